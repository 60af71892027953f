#include "rl/lr_schedule.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

namespace grpo {

void validate(const LrSchedule& s) {
  auto fail = [](const std::string& what) { throw std::invalid_argument("lr schedule: " + what); };
  if (!(s.peak >= 0)) fail("peak learning rate must be >= 0, got " + std::to_string(s.peak));
  if (s.warmup_steps < 0) fail("warmup_steps must be >= 0, got " + std::to_string(s.warmup_steps));
  if (!(s.floor_ratio >= 0 && s.floor_ratio <= 1))
    fail("floor_ratio must be in [0, 1], got " + std::to_string(s.floor_ratio));
  if (s.decay == LrDecay::Cosine && s.total_steps <= s.warmup_steps)
    fail("cosine decay needs total_steps > warmup_steps, got total_steps " + std::to_string(s.total_steps) +
         " and warmup_steps " + std::to_string(s.warmup_steps));
}

double learning_rate(const LrSchedule& s, int64_t step) {
  validate(s);
  if (step < 0) throw std::invalid_argument("lr schedule: step must be >= 0, got " + std::to_string(step));
  if (step < s.warmup_steps) return s.peak * double(step + 1) / double(s.warmup_steps);
  if (s.decay == LrDecay::Constant) return s.peak;
  const double progress = std::min(1.0, double(step - s.warmup_steps) / double(s.total_steps - s.warmup_steps));
  const double floor = s.floor_ratio * s.peak;
  return floor + (s.peak - floor) * 0.5 * (1.0 + std::cos(M_PI * progress));
}

}  // namespace grpo
