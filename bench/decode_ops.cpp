// What a decode step spends its time on: the top-level LibTorch operations of greedy batch-B decoding
// (counted by a RecordFunction observer; ops called inside other ops are not counted again), per
// generated token, with their inclusive wall time. For a model bound by per-op overhead (a tiny MoE at
// batch 1) this is the table to cut down.
//
//   bench_decode_ops CONFIG.json [NEW_TOKENS=128] [BATCH=1] [ROWS=25]
#include <ATen/record_function.h>
#include <fmt/core.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <string>
#include <vector>

#include "bench/bench_inputs.h"
#include "policy/causal_lm.h"
#include "rollout/rollout_engine.h"

using namespace grpo;
using Clock = std::chrono::steady_clock;

namespace {

struct OpStats {
  int64_t calls = 0;
  double seconds = 0;
};

// The observer runs on the decoding thread only; depth tells top-level calls from nested ones.
thread_local int depth = 0;
thread_local std::vector<Clock::time_point> starts;
std::map<std::string, OpStats> stats;

std::unique_ptr<at::ObserverContext> on_enter(const at::RecordFunction&) {
  ++depth;
  starts.push_back(Clock::now());
  return nullptr;
}

void on_exit(const at::RecordFunction& fn, at::ObserverContext*) {
  const double seconds = std::chrono::duration<double>(Clock::now() - starts.back()).count();
  starts.pop_back();
  if (--depth == 0) {
    OpStats& s = stats[fn.name()];
    s.calls += 1;
    s.seconds += seconds;
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    fmt::print(stderr, "usage: bench_decode_ops CONFIG.json [NEW_TOKENS] [BATCH] [ROWS]\n");
    return 2;
  }
  const int64_t new_tokens = argc > 2 ? std::stoll(argv[2]) : 128;
  const int64_t batch = argc > 3 ? std::stoll(argv[3]) : 1;
  const size_t rows = argc > 4 ? std::stoul(argv[4]) : 25;
  torch::manual_seed(0);
  ModelConfig config = load_model_config(argv[1]);
  CausalLM model(config);
  model->eval();
  RolloutOptions o;
  o.sampling.temperature = 0;
  o.stop.max_new_tokens = new_tokens;
  o.max_batch_rows = batch;
  RolloutEngine engine(model, nullptr, o);
  engine.generate(bench::synthetic_prompts(config, batch, 16));  // warm-up: allocator, BLAS threads

  auto handle = at::addThreadLocalCallback(
      at::RecordFunctionCallback(on_enter, on_exit).scopes({at::RecordScope::FUNCTION}).needsInputs(false));
  const auto begin = Clock::now();
  engine.generate(bench::synthetic_prompts(config, batch, 16));
  const double wall = std::chrono::duration<double>(Clock::now() - begin).count();
  at::removeCallback(handle);

  std::vector<std::pair<std::string, OpStats>> sorted(stats.begin(), stats.end());
  std::sort(sorted.begin(), sorted.end(), [](const auto& a, const auto& b) { return a.second.seconds > b.second.seconds; });
  int64_t calls = 0;
  double op_seconds = 0;
  for (const auto& [name, s] : sorted) calls += s.calls, op_seconds += s.seconds;
  const double steps = static_cast<double>(new_tokens);
  fmt::print("{} at batch {}: {:.3f} ms per generated token (observed), {:.0f} top-level ops per token, "
             "{:.0f}% of the time inside them\n",
             argv[1], batch, 1e3 * wall / steps, calls / steps, 100.0 * op_seconds / wall);
  fmt::print("{:<36} {:>9} {:>10} {:>9}\n", "op", "per token", "us/token", "us/call");
  for (size_t i = 0; i < std::min(rows, sorted.size()); ++i) {
    const auto& [name, s] = sorted[i];
    fmt::print("{:<36} {:>9.1f} {:>10.1f} {:>9.2f}\n", name, s.calls / steps, 1e6 * s.seconds / steps, 1e6 * s.seconds / s.calls);
  }
  return 0;
}
