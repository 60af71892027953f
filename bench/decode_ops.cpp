// What a decode step spends its time on: every LibTorch operation of greedy batch-B decoding, with its
// self time (inclusive time minus the operations it calls, so nothing is counted twice) per decode step
// (a token for every row), matrix products summed apart from everything else. The GEMM rate at the
// step's shapes (one row per sequence of the batch against each weight) is measured in the same run,
// so the products' share can be read against what they could cost.
//
//   bench_decode_ops CONFIG.json [NEW_TOKENS=128] [BATCH=1] [ROWS=25]
#include <fmt/core.h>

#include <chrono>
#include <string>
#include <thread>

#include "bench/bench_inputs.h"
#include "bench/gemm_peak.h"
#include "bench/op_profile.h"
#include "policy/causal_lm.h"
#include "rollout/rollout_engine.h"

using namespace grpo;
using Clock = std::chrono::steady_clock;

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
  const int64_t h = config.hidden_size;
  bench::measure_gemm_peak({{"x·W[h,h]ᵀ", batch, h, h},
                            {"x·W_upᵀ", batch, h, config.intermediate_size},
                            {"x·W_downᵀ", batch, config.intermediate_size, h},
                            {"head", batch, h, config.vocab_size}});
  fmt::print("{} LibTorch threads, {} cores\n", torch::get_num_threads(), std::thread::hardware_concurrency());
  RolloutOptions o;
  o.sampling.temperature = 0;
  o.stop.max_new_tokens = new_tokens;
  o.max_batch_rows = batch;
  RolloutEngine engine(model, nullptr, o);
  engine.generate(bench::synthetic_prompts(config, batch, 16));  // warm-up: allocator, BLAS threads

  const auto begin = Clock::now();
  bench::OpProfile profile;
  engine.generate(bench::synthetic_prompts(config, batch, 16));
  profile.stop();
  const double wall = std::chrono::duration<double>(Clock::now() - begin).count();
  fmt::print("{} at batch {} ({} new tokens after a 16-token prompt, prefill included):\n", argv[1], batch, new_tokens);
  profile.print(static_cast<double>(new_tokens), "step", wall, rows);  // one step: a token for every row
  return 0;
}
