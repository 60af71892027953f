// Rollout throughput: tokens/s of the KV-cache engine at several batch sizes, against a naive loop that
// recomputes the whole sequence every step, and against the memory-bandwidth bound (every decode step
// must read all weights and the cache once) measured with a large copy in the same run.
//
//   bench_rollout CONFIG.json [NEW_TOKENS=256] [BATCHES=1,8,64] [NAIVE_MAX_BATCH=8]
#include <fmt/core.h>

#include <chrono>
#include <cstdio>
#include <cmath>
#include <sstream>
#include <string>
#include <vector>

#include "policy/causal_lm.h"
#include "policy/model_size.h"
#include "rollout/rollout_engine.h"

using namespace grpo;
using Clock = std::chrono::steady_clock;

namespace {

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// Read + write bytes per second of a 256 MiB copy, best of 5.
double copy_bandwidth() {
  torch::Tensor a = torch::ones({64 << 20}), b = torch::empty_like(a);
  double best = 0;
  for (int i = 0; i < 5; ++i) {
    auto t = Clock::now();
    b.copy_(a);
    best = std::max(best, 2.0 * a.numel() * 4 / seconds_since(t));
  }
  return best;
}

// Greedy generation that re-runs the full sequence for every new token (no cache).
double naive_tokens_per_second(CausalLM& model, int64_t batch, int64_t prompt_len, int64_t new_tokens) {
  torch::NoGradGuard no_grad;
  torch::Tensor ids = torch::randint(3, model->config().vocab_size, {batch, prompt_len}, torch::kLong);
  auto t = Clock::now();
  for (int64_t i = 0; i < new_tokens; ++i) {
    ModelInputs in;
    in.input_ids = ids;
    torch::Tensor next = model->forward(in).select(1, ids.size(1) - 1).argmax(-1, true);
    ids = torch::cat({ids, next}, 1);
  }
  return batch * new_tokens / seconds_since(t);
}

// Weight bytes one decode step of `batch` rows must read (float32). Every dense weight is read once;
// the input embedding is a lookup of `batch` rows (unless tied: then it is the output head, read
// whole); a routed expert is read when at least one row picks it, which with uniform routing happens
// with probability 1 - (1 - k/E)^batch.
double weight_bytes_per_step(const ModelConfig& config, const ParameterCounts& params, int64_t batch) {
  double values = static_cast<double>(params.total - params.routed_experts);
  if (!config.tie_word_embeddings) values -= static_cast<double>(params.embedding - batch * config.hidden_size);
  if (config.has_moe()) {
    const double picked = static_cast<double>(config.moe.num_experts_per_tok) / config.moe.n_routed_experts;
    values += params.routed_experts * (1.0 - std::pow(1.0 - picked, static_cast<double>(batch)));
  }
  return 4.0 * values;
}

std::vector<int64_t> parse_list(const std::string& s) {
  std::vector<int64_t> out;
  std::stringstream in(s);
  std::string item;
  while (std::getline(in, item, ',')) out.push_back(std::stoll(item));
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    fmt::print(stderr, "usage: bench_rollout CONFIG.json [NEW_TOKENS] [BATCHES] [NAIVE_MAX_BATCH]\n");
    return 2;
  }
  const int64_t new_tokens = argc > 2 ? std::stoll(argv[2]) : 256;
  const std::vector<int64_t> batches = parse_list(argc > 3 ? argv[3] : "1,8,64");
  const int64_t naive_max_batch = argc > 4 ? std::stoll(argv[4]) : 8;
  const int64_t prompt_len = 16;
  torch::manual_seed(0);
  ModelConfig config = load_model_config(argv[1]);
  CausalLM model(config);
  model->eval();
  const ParameterCounts params = count_parameters(config);
  const double bandwidth = copy_bandwidth();
  fmt::print("model {} ({}): {:.1f}M parameters, {:.1f} MB of f32 weights, KV cache {} bytes per position; "
             "copy bandwidth {:.1f} GB/s; {} threads\n",
             argv[1], config.model_type, params.total / 1e6, 4.0 * params.total / 1e6, 4 * kv_cache_values_per_token(config),
             bandwidth / 1e9, torch::get_num_threads());
  fmt::print("{:>6} {:>11} {:>12} {:>9} {:>14} {:>10} {:>13} {:>16} {:>10}\n", "batch", "new tokens", "engine tok/s",
             "ms/step", "naive tok/s", "speedup", "MB read/step", "bound tok/s", "of bound");

  for (int64_t batch : batches) {
    RolloutOptions o;
    o.sampling.temperature = 0;
    o.stop.max_new_tokens = new_tokens;  // no stop ids: every row runs to the end
    o.max_batch_rows = batch;
    RolloutEngine engine(model, nullptr, o);
    std::vector<PromptRequest> requests;
    for (int64_t i = 0; i < batch; ++i) {
      std::vector<int32_t> prompt(prompt_len);
      for (int64_t t = 0; t < prompt_len; ++t) prompt[t] = static_cast<int32_t>(3 + (i * 7 + t * 13) % (config.vocab_size - 3));
      requests.push_back({prompt, 1, static_cast<uint64_t>(i)});
    }
    auto t = Clock::now();
    engine.generate(requests);
    const double seconds = seconds_since(t);
    const double engine_tps = batch * new_tokens / seconds;
    // Bound: per step, the weights it needs plus the average cache (prompt + half the new tokens) of
    // every row, read once at the measured copy bandwidth.
    const double cache_bytes = 4.0 * kv_cache_values_per_token(config) * batch * (prompt_len + new_tokens / 2.0);
    const double step_bytes = weight_bytes_per_step(config, params, batch) + cache_bytes;
    const double bound_tps = batch * bandwidth / step_bytes;
    std::string naive = "-", speedup = "-";
    if (batch <= naive_max_batch) {
      double naive_tps = naive_tokens_per_second(model, batch, prompt_len, new_tokens);
      naive = fmt::format("{:.0f}", naive_tps);
      speedup = fmt::format("{:.1f}x", engine_tps / naive_tps);
    }
    fmt::print("{:>6} {:>11} {:>12.0f} {:>9.2f} {:>14} {:>10} {:>13.1f} {:>16.0f} {:>9.0f}%\n", batch, new_tokens, engine_tps,
               1e3 * seconds / new_tokens, naive, speedup, step_bytes / 1e6, bound_tps, 100.0 * engine_tps / bound_tps);
    std::fflush(stdout);
  }
  return 0;
}
