#include "rl/overlong_penalty.h"

#include <fmt/core.h>

#include <stdexcept>

namespace grpo {

void validate(const OverlongPenalty& p) {
  if (p.buffer < 0 || p.buffer > p.max_length)
    throw std::invalid_argument(fmt::format("overlong_buffer must be between 0 and max_new_tokens ({}), got {}", p.max_length, p.buffer));
  if (p.factor < 0) throw std::invalid_argument(fmt::format("overlong_penalty must be >= 0, got {}", p.factor));
}

double soft_overlong_penalty(const OverlongPenalty& p, int64_t length) {
  if (p.buffer == 0) return 0.0;
  const int64_t expected = p.max_length - p.buffer;  // L_max − L_cache: free of penalty up to here
  if (length <= expected) return 0.0;
  if (length > p.max_length) return -p.factor;
  return static_cast<double>(expected - length) / static_cast<double>(p.buffer) * p.factor;
}

}  // namespace grpo
