#include "policy/tokenizer/load_phases.h"

namespace grpo {

namespace {
struct Recorder {
  LoadPhases* phases = nullptr;
  std::chrono::steady_clock::time_point last;
};
thread_local Recorder recorder;
}  // namespace

void LoadPhases::record_into(LoadPhases* phases) {
  recorder.phases = phases;
  recorder.last = std::chrono::steady_clock::now();
}

void LoadPhases::mark(const char* phase) {
  if (!recorder.phases) return;
  const auto now = std::chrono::steady_clock::now();
  const double s = std::chrono::duration<double>(now - recorder.last).count();
  recorder.last = now;
  for (auto& [name, total] : recorder.phases->seconds) {
    if (name == phase) {
      total += s;
      return;
    }
  }
  recorder.phases->seconds.emplace_back(phase, s);
}

}  // namespace grpo
