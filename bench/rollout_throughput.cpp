// Rollout throughput: tokens/s of the KV-cache engine at several batch sizes, against a naive loop that
// recomputes the whole sequence every step, and against the memory-bandwidth bound: every decode step
// must read the weights it uses and the cache once, at the better bandwidth of a large copy on one core
// or on all, measured in the same run. Engine and naive rates are given per wall-clock second and per
// CPU second of this process (all threads): on a shared machine the first includes time other
// processes took, the second does not. A second bound is compute: every generated token costs
// 2 · activated parameters FLOPs of matrix products, at the float32 GEMM peak measured in the same run
// (the best of a square product and the model's products at the largest batch).
//
//   bench_rollout CONFIG.json [NEW_TOKENS=256] [BATCHES=1,8,64,256] [NAIVE_MAX_BATCH=8]
#include <fmt/core.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <cstdio>
#include <cmath>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "bench/bench_inputs.h"
#include "bench/decode_bound.h"
#include "bench/gemm_peak.h"
#include "policy/causal_lm.h"
#include "policy/model_size.h"
#include "rollout/rollout_engine.h"

using namespace grpo;
using Clock = std::chrono::steady_clock;

namespace {

// Wall-clock and process CPU seconds (all threads). On a shared machine other processes stretch the
// wall clock but not the CPU time this process used, so both are reported.
struct Timer {
  Clock::time_point wall = Clock::now();
  double cpu = cpu_now();
  static double cpu_now() {
    timespec t{};
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return static_cast<double>(t.tv_sec) + 1e-9 * static_cast<double>(t.tv_nsec);
  }
  double wall_seconds() const { return std::chrono::duration<double>(Clock::now() - wall).count(); }
  double cpu_seconds() const { return cpu_now() - cpu; }
};

struct Rate {
  double wall = 0, cpu = 0;  // per wall second, per CPU second
};

// Read + write bytes per second of a 256 MiB copy, best of 5, split over `threads` threads (BLAS
// decodes on all cores, so the bound takes the better of one core's and all cores' bandwidth).
Rate copy_bandwidth(unsigned threads) {
  const size_t n = 64 << 20;
  std::vector<float> a(n, 1.0f), b(n, 0.0f);
  Rate best;
  for (int i = 0; i < 5; ++i) {
    Timer t;
    std::vector<std::thread> workers;
    for (unsigned w = 0; w < threads; ++w)
      workers.emplace_back([&, w] {
        const size_t begin = n * w / threads, end = n * (w + 1) / threads;
        std::memcpy(b.data() + begin, a.data() + begin, (end - begin) * sizeof(float));
      });
    for (std::thread& worker : workers) worker.join();
    const double bytes = 2.0 * static_cast<double>(n) * sizeof(float);
    best.wall = std::max(best.wall, bytes / t.wall_seconds());
    best.cpu = std::max(best.cpu, bytes / t.cpu_seconds());
  }
  return best;
}

// Greedy generation that re-runs the full sequence for every new token (no cache); only the last
// position is projected to the vocabulary, as a sensible uncached loop would.
Rate naive_tokens_per_second(CausalLM& model, int64_t batch, int64_t prompt_len, int64_t new_tokens) {
  c10::InferenceMode inference;  // as the engine runs
  torch::Tensor ids = torch::randint(3, model->config().vocab_size, {batch, prompt_len}, torch::kLong);
  Timer t;
  for (int64_t i = 0; i < new_tokens; ++i) {
    ModelInputs in;
    in.input_ids = ids;
    torch::Tensor last = model->forward_hidden(in).hidden.select(1, ids.size(1) - 1);  // [B, H]
    torch::Tensor next = model->logits(last).argmax(-1, true);
    ids = torch::cat({ids, next}, 1);
  }
  const double tokens = static_cast<double>(batch * new_tokens);
  return {tokens / t.wall_seconds(), tokens / t.cpu_seconds()};
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    fmt::print(stderr, "usage: bench_rollout CONFIG.json [NEW_TOKENS] [BATCHES] [NAIVE_MAX_BATCH]\n");
    return 2;
  }
  const int64_t new_tokens = argc > 2 ? std::stoll(argv[2]) : 256;
  const std::vector<int64_t> batches = bench::parse_list(argc > 3 ? argv[3] : "1,8,64,256");
  const int64_t naive_max_batch = argc > 4 ? std::stoll(argv[4]) : 8;
  const int64_t prompt_len = 16;
  torch::manual_seed(0);
  ModelConfig config = load_model_config(argv[1]);
  CausalLM model(config);
  model->eval();
  const ParameterCounts params = count_parameters(config);
  const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
  const Rate one_core = copy_bandwidth(1), all_cores = copy_bandwidth(cores);
  const Rate bandwidth = all_cores.wall > one_core.wall ? all_cores : one_core;  // the stricter bound
  const int64_t largest = *std::max_element(batches.begin(), batches.end()), h = config.hidden_size;
  const double gemm_peak = bench::measure_gemm_peak({{"x·W[h,h]ᵀ", largest, h, h},
                                                     {"x·W_upᵀ", largest, h, config.intermediate_size},
                                                     {"x·W_downᵀ", largest, config.intermediate_size, h},
                                                     {"head", largest, h, config.vocab_size}});
  const double gemm_bound = gemm_peak / (2.0 * static_cast<double>(params.activated_per_token));  // tokens/s
  fmt::print("GEMM-peak bound: {:.0f} tokens/s ({:.1f}M activated parameters per token)\n", gemm_bound,
             params.activated_per_token / 1e6);
  fmt::print("model {} ({}): {:.1f}M parameters, {:.1f} MB of f32 weights, KV cache {} bytes per position\n", argv[1],
             config.model_type, params.total / 1e6, 4.0 * params.total / 1e6, 4 * kv_cache_values_per_token(config));
  fmt::print("copy bandwidth (read + write): {:.1f} GB/s on {} cores, {:.1f} on one (the bound uses the higher); "
             "{} LibTorch threads\n", all_cores.wall / 1e9, cores, one_core.wall / 1e9, torch::get_num_threads());
  fmt::print("{:>5} {:>5} {:>8} {:>17} {:>17} {:>13} {:>26} {:>8}\n", "", "", "", "engine tok/s", "naive tok/s", "speedup",
             "bandwidth bound", "GEMM");
  fmt::print("{:>5} {:>5} {:>8} {:>8} {:>8} {:>8} {:>8} {:>6} {:>6} {:>8} {:>8} {:>8} {:>8}\n", "batch", "new", "ms/step", "wall",
             "CPU", "wall", "CPU", "wall", "CPU", "MB/step", "tok/s", "of bound", "of peak");

  for (int64_t batch : batches) {
    RolloutOptions o;
    o.sampling.temperature = 0;
    o.stop.max_new_tokens = new_tokens;  // no stop ids: every row runs to the end
    o.max_batch_rows = batch;
    RolloutEngine engine(model, nullptr, o);
    std::vector<PromptRequest> requests = bench::synthetic_prompts(config, batch, prompt_len);
    Timer t;
    engine.generate(requests);
    const double tokens = static_cast<double>(batch * new_tokens), wall = t.wall_seconds();
    const Rate engine_tps{tokens / wall, tokens / t.cpu_seconds()};
    // Bound: per step, the weights it needs plus the average cache (prompt + half the new tokens) of
    // every row, read once at the measured copy bandwidth.
    const double cache_bytes = 4.0 * kv_cache_values_per_token(config) * batch * (prompt_len + new_tokens / 2.0);
    const double step_bytes = bench::weight_bytes_per_step(config, params, batch, 4.0) + cache_bytes;
    const double bound = batch * bandwidth.wall / step_bytes;  // per wall second, all cores reading
    std::string naive_wall = "-", naive_cpu = "-", speedup_wall = "-", speedup_cpu = "-";
    if (batch <= naive_max_batch) {
      const Rate naive = naive_tokens_per_second(model, batch, prompt_len, new_tokens);
      naive_wall = fmt::format("{:.1f}", naive.wall);
      naive_cpu = fmt::format("{:.1f}", naive.cpu);
      speedup_wall = fmt::format("{:.1f}x", engine_tps.wall / naive.wall);
      speedup_cpu = fmt::format("{:.1f}x", engine_tps.cpu / naive.cpu);
    }
    fmt::print("{:>5} {:>5} {:>8.1f} {:>8.1f} {:>8.1f} {:>8} {:>8} {:>6} {:>6} {:>8.1f} {:>8.0f} {:>7.0f}% {:>7.0f}%\n", batch,
               new_tokens, 1e3 * wall / new_tokens, engine_tps.wall, engine_tps.cpu, naive_wall, naive_cpu, speedup_wall,
               speedup_cpu, step_bytes / 1e6, bound, 100.0 * engine_tps.wall / bound, 100.0 * engine_tps.wall / gemm_bound);
    std::fflush(stdout);
  }
  return 0;
}
