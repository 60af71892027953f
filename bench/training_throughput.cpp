// Training throughput on the CPU: forward + backward tokens/s of one model (next-token cross-entropy
// over every position, no optimizer step) and the share of the GEMM peak measured in the same run that
// it reaches: 6 · activated parameters · tokens/s (2 for the forward, 4 for the backward; attention's
// own products are left out) over the best float32 matmul rate, square or at the model's shapes.
// With PROFILE_ROWS > 0, one more step runs under an op observer and its per-op self times are printed
// (matrix products against everything else).
//
//   bench_training CONFIG.json [BATCH=8] [LEN=256] [STEPS=3] [PROFILE_ROWS=0]
#include <fmt/core.h>

#include <chrono>
#include <string>
#include <thread>

#include "bench/gemm_peak.h"
#include "bench/op_profile.h"
#include "policy/causal_lm.h"
#include "policy/model_size.h"

using namespace grpo;
using Clock = std::chrono::steady_clock;

namespace {

double seconds_since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    fmt::print(stderr, "usage: bench_training CONFIG.json [BATCH=8] [LEN=256] [STEPS=3] [PROFILE_ROWS=0]\n");
    return 2;
  }
  const int64_t batch = argc > 2 ? std::stoll(argv[2]) : 8;
  const int64_t length = argc > 3 ? std::stoll(argv[3]) : 256;
  const int steps = argc > 4 ? std::stoi(argv[4]) : 3;
  const size_t profile_rows = argc > 5 ? std::stoul(argv[5]) : 0;
  torch::manual_seed(0);
  const ModelConfig config = load_model_config(argv[1]);
  const ParameterCounts params = count_parameters(config);
  CausalLM model(config);
  model->train();

  const int64_t rows = batch * length, h = config.hidden_size;
  const double peak = bench::measure_gemm_peak({{"x·W[h,h]ᵀ", rows, h, h},
                                                {"x·W_gate,upᵀ", rows, h, config.intermediate_size},
                                                {"x·W_downᵀ", rows, config.intermediate_size, h},
                                                {"head", rows, h, config.vocab_size}});
  fmt::print("model {} ({}): {:.1f}M parameters, {:.1f}M activated per token; {} x {} tokens; {} LibTorch threads, "
             "{} cores\n",
             argv[1], config.model_type, params.total / 1e6, params.activated_per_token / 1e6, batch, length,
             torch::get_num_threads(), std::thread::hardware_concurrency());

  torch::Tensor ids = torch::randint(3, config.vocab_size, {batch, length + 1}, torch::kLong);
  double forward_seconds = 0, backward_seconds = 0;
  auto step = [&] {
    model->zero_grad();
    const auto start = Clock::now();
    ModelInputs in;
    in.input_ids = ids.narrow(1, 0, length);
    ModelOutputs out = model->forward_hidden(in);
    torch::Tensor logits = model->logits(out.hidden);  // [B, T, V]
    torch::Tensor loss = torch::nn::functional::cross_entropy(logits.reshape({rows, -1}), ids.narrow(1, 1, length).reshape({rows}));
    if (out.aux_loss.defined()) loss = loss + out.aux_loss;
    forward_seconds = seconds_since(start);
    const auto backward_start = Clock::now();
    loss.backward();
    backward_seconds = seconds_since(backward_start);
  };
  step();  // warm-up: the allocator's pools, gradients allocated
  double best = 1e30, best_forward = 0, best_backward = 0;
  for (int i = 0; i < steps; ++i) {
    step();
    if (forward_seconds + backward_seconds < best) {
      best = forward_seconds + backward_seconds;
      best_forward = forward_seconds;
      best_backward = backward_seconds;
    }
  }
  const double tokens_per_second = static_cast<double>(rows) / best;
  const double model_flops = 6.0 * static_cast<double>(params.activated_per_token) * tokens_per_second;
  fmt::print("{:>10} {:>10} {:>10} {:>10} {:>12} {:>10}\n", "forward s", "backward s", "step s", "tokens/s", "model GFLOP/s",
             "of peak");
  fmt::print("{:>10.3f} {:>10.3f} {:>10.3f} {:>10.0f} {:>12.1f} {:>9.1f}%\n", best_forward, best_backward, best,
             tokens_per_second, model_flops / 1e9, 100.0 * model_flops / peak);

  if (profile_rows > 0) {
    const auto start = Clock::now();
    bench::OpProfile profile;
    step();
    profile.stop();
    fmt::print("\nper-op profile of one more step (forward + backward):\n");
    profile.print(1.0, "step", seconds_since(start), profile_rows);
  }
  return 0;
}
