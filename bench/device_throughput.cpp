// One run on one device (CPU or a CUDA GPU), one table per part:
//  - rollout: greedy decoding tokens/s at each batch size against the memory-bandwidth bound (weights a
//    step reads + the average cache, over the measured device-copy bandwidth);
//  - training: forward + backward + optimizer step tokens/s, and model-FLOPs utilisation: 6 · activated
//    parameters · tokens/s (attention's own FLOPs left out) over the measured matmul peak in the
//    weights' dtype;
//  - peak memory (CUDA: the caching allocator's peak of allocated bytes since the part began; CPU: the
//    process's peak RSS, which includes the 1 GiB the bandwidth measurement copies).
//
//   bench_device CONFIG.json [key=value ...]   keys: device=auto dtype=auto batches=1,64,256
//                                              new_tokens=256 train_batch=8 train_len=512 train_steps=3
#include <fmt/core.h>
#include <sys/resource.h>

#include <chrono>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#ifdef GRPO_WITH_CUDA
#include <c10/cuda/CUDACachingAllocator.h>
#endif

#include "bench/bench_inputs.h"
#include "bench/decode_bound.h"
#include "policy/causal_lm.h"
#include "policy/device.h"
#include "policy/model_size.h"
#include "rl/policy_optimizer.h"
#include "rollout/rollout_engine.h"

using namespace grpo;
using Clock = std::chrono::steady_clock;

namespace {

void synchronize(const torch::Device& device) {
  if (device.is_cuda()) torch::cuda::synchronize(device.index());
}

// Seconds of the best of `repeats` calls of f, each followed by a device synchronisation.
template <class F>
double best_seconds(const torch::Device& device, int repeats, F f) {
  double best = 1e30;
  for (int i = 0; i < repeats; ++i) {
    synchronize(device);
    const auto start = Clock::now();
    f();
    synchronize(device);
    best = std::min(best, std::chrono::duration<double>(Clock::now() - start).count());
  }
  return best;
}

// Read + write bytes per second of a 512 MiB copy on the device (CPU: memcpy, which LibTorch's copy_
// does not reach on one thread).
double copy_bandwidth(const torch::Device& device) {
  const int64_t bytes = int64_t{512} << 20;
  auto options = torch::TensorOptions().dtype(torch::kByte).device(device);
  torch::Tensor a = torch::ones({bytes}, options), b = torch::zeros({bytes}, options);
  const double seconds = best_seconds(device, 5, [&] {
    if (device.is_cuda())
      b.copy_(a);
    else
      std::memcpy(b.data_ptr(), a.data_ptr(), static_cast<size_t>(bytes));
  });
  return 2.0 * static_cast<double>(bytes) / seconds;
}

// FLOP/s of a square matmul in `dtype`, the peak MFU is measured against.
double matmul_peak(const torch::Device& device, torch::ScalarType dtype) {
  const int64_t n = device.is_cuda() ? 8192 : 1024;
  auto options = torch::TensorOptions().dtype(dtype).device(device);
  torch::Tensor a = torch::randn({n, n}, options), b = torch::randn({n, n}, options);
  torch::mm(a, b);  // warm-up: library handles, kernels
  const double seconds = best_seconds(device, 5, [&] { torch::mm(a, b); });
  return 2.0 * static_cast<double>(n * n * n) / seconds;
}

void reset_peak_memory(const torch::Device& device) {
#ifdef GRPO_WITH_CUDA
  if (device.is_cuda()) c10::cuda::CUDACachingAllocator::resetPeakStats(device.index());
#endif
}

// Peak bytes since the last reset (CUDA) or of the process (CPU).
double peak_memory_bytes(const torch::Device& device) {
#ifdef GRPO_WITH_CUDA
  if (device.is_cuda()) {
    auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(device.index());
    return static_cast<double>(stats.allocated_bytes[static_cast<size_t>(c10::cuda::CUDACachingAllocator::StatType::AGGREGATE)].peak);
  }
#endif
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return 1024.0 * static_cast<double>(usage.ru_maxrss);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    fmt::print(stderr, "usage: bench_device CONFIG.json [device=auto dtype=auto batches=1,64,256 new_tokens=256 "
                       "train_batch=8 train_len=512 train_steps=3]\n");
    return 2;
  }
  std::map<std::string, std::string> opt = {{"device", "auto"}, {"dtype", "auto"}, {"batches", "1,64,256"},
                                            {"new_tokens", "256"}, {"train_batch", "8"}, {"train_len", "512"},
                                            {"train_steps", "3"}};
  for (int i = 2; i < argc; ++i) {
    const std::string arg = argv[i];
    const size_t eq = arg.find('=');
    if (eq == std::string::npos || !opt.count(arg.substr(0, eq))) {
      fmt::print(stderr, "bench_device: unknown argument {}\n", arg);
      return 2;
    }
    opt[arg.substr(0, eq)] = arg.substr(eq + 1);
  }
  const Placement placement = resolve_placement(opt["device"], opt["dtype"]);
  const torch::Device device = placement.device;
  torch::manual_seed(0);
  const ModelConfig config = load_model_config(argv[1]);
  const ParameterCounts params = count_parameters(config);
  CausalLM model(config);
  place_model(model, placement);
  const double value_bytes = static_cast<double>(torch::elementSize(placement.dtype));
  const double bandwidth = copy_bandwidth(device), peak = matmul_peak(device, placement.dtype);
  fmt::print("model {} ({}): {:.1f}M parameters ({:.1f}M activated per token), {} on {}\n", argv[1], config.model_type,
             params.total / 1e6, params.activated_per_token / 1e6, torch::toString(placement.dtype), device.str());
  fmt::print("measured: copy bandwidth {:.1f} GB/s (read + write), {} matmul {:.4g} TFLOP/s\n\n", bandwidth / 1e9,
             torch::toString(placement.dtype), peak / 1e12);

  const int64_t new_tokens = std::stoll(opt["new_tokens"]), prompt_len = 16;
  model->eval();
  {  // warm-up: kernels, library handles, the allocator's pools
    RolloutOptions o;
    o.sampling.temperature = 0;
    o.stop.max_new_tokens = 8;
    RolloutEngine(model, nullptr, o).generate(bench::synthetic_prompts(config, 1, prompt_len));
  }
  fmt::print("rollout (greedy, {}-token prompts)\n{:>6} {:>5} {:>9} {:>10} {:>10} {:>9} {:>10}\n", prompt_len, "batch", "new",
             "ms/step", "tok/s", "bound", "of bound", "peak mem");
  for (int64_t batch : bench::parse_list(opt["batches"])) {
    RolloutOptions o;
    o.sampling.temperature = 0;
    o.stop.max_new_tokens = new_tokens;
    o.max_batch_rows = batch;
    RolloutEngine engine(model, nullptr, o);
    reset_peak_memory(device);
    const double seconds = best_seconds(device, 1, [&] { engine.generate(bench::synthetic_prompts(config, batch, prompt_len)); });
    const double rate = static_cast<double>(batch * new_tokens) / seconds;
    const double cache = value_bytes * kv_cache_values_per_token(config) * batch * (prompt_len + new_tokens / 2.0);
    const double bound = batch * bandwidth / (bench::weight_bytes_per_step(config, params, batch, value_bytes) + cache);
    fmt::print("{:>6} {:>5} {:>9.2f} {:>10.1f} {:>10.0f} {:>8.0f}% {:>7.2f} GB\n", batch, new_tokens, 1e3 * seconds / new_tokens,
               rate, bound, 100.0 * rate / bound, peak_memory_bytes(device) / 1e9);
  }

  const int64_t batch = std::stoll(opt["train_batch"]), length = std::stoll(opt["train_len"]);
  const int64_t steps = std::stoll(opt["train_steps"]);
  model->train();
  AdamWSettings adamw;
  adamw.lr = 1e-6;
  PolicyOptimizer optimizer(model->parameters(), adamw);
  auto train_step = [&] {
    torch::Tensor ids = torch::randint(3, config.vocab_size, {batch, length + 1}, torch::TensorOptions().dtype(torch::kLong).device(device));
    ModelInputs in;
    in.input_ids = ids.narrow(1, 0, length);
    ModelOutputs out = model->forward_hidden(in);
    torch::Tensor logits = model->logits(out.hidden).to(torch::kFloat);
    torch::Tensor loss = torch::nn::functional::cross_entropy(logits.reshape({-1, logits.size(-1)}), ids.narrow(1, 1, length).reshape({-1}));
    optimizer.zero_grad();
    (out.aux_loss.defined() ? loss + out.aux_loss : loss).backward();
    optimizer.clip_and_step(/*max_grad_norm=*/1.0, adamw.lr);
  };
  train_step();  // warm-up, and the optimizer's moments are allocated
  reset_peak_memory(device);
  const double seconds = best_seconds(device, static_cast<int>(steps), train_step);
  const double tokens_per_second = static_cast<double>(batch * length) / seconds;
  const double mfu = 6.0 * static_cast<double>(params.activated_per_token) * tokens_per_second / peak;
  fmt::print("\ntraining (forward + backward + AdamW{}, {} x {} tokens, best of {} steps)\n"
             "{:>10} {:>12} {:>8} {:>10}\n{:>10.3f} {:>12.0f} {:>7.1f}% {:>7.2f} GB\n",
             optimizer.has_master_weights() ? " on float32 masters" : "", batch, length, steps, "s/step", "tokens/s", "MFU",
             "peak mem", seconds, tokens_per_second, 100.0 * mfu, peak_memory_bytes(device) / 1e9);
  return 0;
}
