#pragma once
// Wall-clock seconds of a phase, for timing metrics and progress lines. Header-only and free of
// dependencies; it lives in the lowest layer so that every layer (rollout, rl, the experiment host,
// benchmarks) times its phases the same way.
#include <chrono>

namespace grpo {

class Stopwatch {
 public:
  Stopwatch() : start_(Clock::now()) {}
  // Seconds since construction or the last restart().
  double seconds() const { return std::chrono::duration<double>(Clock::now() - start_).count(); }
  // Returns seconds() and starts counting again from now.
  double restart() {
    const Clock::time_point now = Clock::now();
    const double elapsed = std::chrono::duration<double>(now - start_).count();
    start_ = now;
    return elapsed;
  }

 private:
  using Clock = std::chrono::steady_clock;
  Clock::time_point start_;
};

}  // namespace grpo
