// Routed experts of one DeepSeekMoE layer: the per-expert loop against the grouped paths (padded bmm,
// contiguous segments; policy/grouped_experts.h), at the tiny, small and R1-Zero model sizes, for a
// training batch (forward + backward) and for decode steps at batch 8-256 (forward, no autograd).
// Each row: median time per layer call, tokens/s, and the layer's FLOP/s as a share of a square
// float32 matmul measured in the same run. Then the top-level LibTorch ops of one training step of the
// tiny MoE model (forward, cross-entropy, backward, AdamW) on the loop and on contiguous segments,
// counted by a RecordFunction observer as bench/decode_ops.cpp does.
//
//   bench_moe_experts ROOT [TRAIN_TOKENS=2048] [REPEATS=7] [ROWS=20]
#include <ATen/record_function.h>
#include <fmt/core.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <string>
#include <vector>

#include "policy/causal_lm.h"
#include "policy/deepseek_moe.h"
#include "policy/model_config.h"

using namespace grpo;
using Clock = std::chrono::steady_clock;

namespace {

// examples/r1_zero/r1_zero.lua's model (grpo.init's config there).
const char* kR1ZeroConfig = R"({
  "model_type": "deepseek_v3", "vocab_size": 32, "hidden_size": 96, "intermediate_size": 256,
  "num_hidden_layers": 4, "num_attention_heads": 4, "q_lora_rank": 48, "kv_lora_rank": 32,
  "qk_nope_head_dim": 16, "qk_rope_head_dim": 8, "v_head_dim": 16, "n_routed_experts": 8,
  "n_shared_experts": 1, "num_experts_per_tok": 2, "moe_intermediate_size": 64, "n_group": 2,
  "topk_group": 1, "first_k_dense_replace": 1, "max_position_embeddings": 128, "tie_word_embeddings": false
})";

template <typename F>
double median_seconds(int repeats, F&& f) {
  f();  // warm-up: allocator, BLAS threads
  std::vector<double> times;
  for (int i = 0; i < repeats; ++i) {
    const auto begin = Clock::now();
    f();
    times.push_back(std::chrono::duration<double>(Clock::now() - begin).count());
  }
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}

// A square float32 matmul's FLOP/s: the ceiling the layer's rows are measured against.
double matmul_peak(int repeats) {
  const int64_t n = 1024;
  torch::Tensor a = torch::randn({n, n}), b = torch::randn({n, n});
  const double seconds = median_seconds(repeats, [&] { torch::mm(a, b); });
  return 2.0 * n * n * n / seconds;
}

// Multiply-adds of one MoE layer's forward on `tokens` tokens: router, top_k routed experts, shared
// experts (SwiGLU: gate, up and down, 3·H·I each). Backward costs twice the forward.
double layer_flops(const ModelConfig& c, int64_t tokens) {
  const double h = c.hidden_size, inter = c.moe.moe_intermediate_size;
  const double routed = 6.0 * h * inter * c.moe.num_experts_per_tok;
  const double shared = 6.0 * h * inter * c.moe.n_shared_experts;
  return tokens * (2.0 * h * c.moe.n_routed_experts + routed + shared);
}

constexpr ExpertPath kPaths[] = {ExpertPath::Loop, ExpertPath::Segments, ExpertPath::Padded};

void layer_table(const std::string& name, const ModelConfig& c, int64_t train_tokens, int repeats, double peak) {
  torch::manual_seed(0);
  DeepSeekMoe moe(c, /*moe_index=*/0);
  const int64_t h = c.hidden_size;
  struct Case {
    std::string what;
    int64_t tokens;
    bool training;
  };
  std::vector<Case> cases = {{"train fwd+bwd", train_tokens, true}};
  for (int64_t batch : {8, 64, 256}) cases.push_back({fmt::format("decode batch {}", batch), batch, false});
  for (const Case& cs : cases) {
    torch::Tensor x = torch::randn({cs.tokens, 1, h});
    torch::Tensor xg = x.clone().requires_grad_(true);
    torch::Tensor probe = torch::randn_like(x);
    moe->train(cs.training);
    auto call = [&](ExpertPath path) {
      moe->set_expert_path(path);
      ForwardContext ctx;
      if (cs.training) {
        (moe(xg, ctx) * probe).sum().backward();
      } else {
        torch::NoGradGuard no_grad;
        moe(x, ctx);
      }
    };
    // The paths take turns within each repeat, so that load from other processes on a shared machine
    // falls on all of them alike; each path's median is reported.
    std::map<ExpertPath, std::vector<double>> times;
    for (ExpertPath path : kPaths) call(path);  // warm-up
    for (int i = 0; i < repeats; ++i)
      for (ExpertPath path : kPaths) {
        const auto begin = Clock::now();
        call(path);
        times[path].push_back(std::chrono::duration<double>(Clock::now() - begin).count());
      }
    auto median = [](std::vector<double> v) {
      std::sort(v.begin(), v.end());
      return v[v.size() / 2];
    };
    const double loop_seconds = median(times[ExpertPath::Loop]);
    for (ExpertPath path : kPaths) {
      const double seconds = median(times[path]);
      const double flops = layer_flops(c, cs.tokens) * (cs.training ? 3.0 : 1.0);
      fmt::print("{:<8} {:<16} {:>6} {:<9} {:>9.3f} {:>7.2f}x {:>11.0f} {:>8.1f} {:>7.1f}%\n", name, cs.what, cs.tokens,
                 expert_path_name(path), 1e3 * seconds, loop_seconds / seconds, cs.tokens / seconds,
                 flops / seconds / 1e9, 100.0 * flops / seconds / peak);
    }
  }
}

// --- per-op profile of one training step --------------------------------------------------------

struct OpStats {
  int64_t calls = 0;
  double seconds = 0;
};

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
    std::string name = fn.name();
    const std::string backward_prefix = "autograd::engine::evaluate_function: ";
    if (name.rfind(backward_prefix, 0) == 0) name = "bwd " + name.substr(backward_prefix.size());
    OpStats& s = stats[name];
    s.calls += 1;
    s.seconds += seconds;
  }
}

void profile_step(const ModelConfig& c, ExpertPath path, int64_t batch, int64_t length, size_t rows) {
  torch::manual_seed(0);
  CausalLM model(c);
  model->train();
  set_expert_path(*model, path);
  torch::optim::AdamW optimizer(model->parameters(), torch::optim::AdamWOptions(1e-3));
  torch::Tensor ids = torch::randint(0, c.vocab_size, {batch, length + 1}, torch::kLong);
  auto step = [&] {
    ModelInputs in;
    in.input_ids = ids.narrow(1, 0, length);
    torch::Tensor logits = model->forward(in);
    torch::Tensor loss = torch::nn::functional::cross_entropy(logits.reshape({-1, logits.size(-1)}),
                                                              ids.narrow(1, 1, length).reshape({-1}));
    optimizer.zero_grad();
    loss.backward();
    optimizer.step();
  };
  step();  // warm-up
  step();
  stats.clear();
  auto handle = at::addThreadLocalCallback(at::RecordFunctionCallback(on_enter, on_exit)
                                               .scopes({at::RecordScope::FUNCTION, at::RecordScope::BACKWARD_FUNCTION})
                                               .needsInputs(false));
  const auto begin = Clock::now();
  step();
  const double wall = std::chrono::duration<double>(Clock::now() - begin).count();
  at::removeCallback(handle);

  std::vector<std::pair<std::string, OpStats>> sorted(stats.begin(), stats.end());
  std::sort(sorted.begin(), sorted.end(), [](const auto& a, const auto& b) { return a.second.seconds > b.second.seconds; });
  int64_t calls = 0;
  double op_seconds = 0;
  for (const auto& [name, s] : sorted) calls += s.calls, op_seconds += s.seconds;
  fmt::print("\none training step of the tiny MoE model, {} x {} tokens, experts: {}: {:.1f} ms, {:.0f} tokens/s, "
             "{} top-level ops ({:.0f}% of the time inside them)\n",
             batch, length, expert_path_name(path), 1e3 * wall, batch * length / wall, calls, 100.0 * op_seconds / wall);
  fmt::print("{:<48} {:>7} {:>9} {:>6}\n", "op", "calls", "ms", "share");
  for (size_t i = 0; i < std::min(rows, sorted.size()); ++i) {
    const auto& [name, s] = sorted[i];
    fmt::print("{:<48} {:>7} {:>9.2f} {:>5.1f}%\n", name, s.calls, 1e3 * s.seconds, 100.0 * s.seconds / wall);
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    fmt::print(stderr, "usage: bench_moe_experts ROOT [TRAIN_TOKENS] [REPEATS] [ROWS]\n");
    return 2;
  }
  const std::string root = argv[1];
  const int64_t train_tokens = argc > 2 ? std::stoll(argv[2]) : 2048;
  const int repeats = argc > 3 ? std::stoi(argv[3]) : 7;
  const size_t rows = argc > 4 ? std::stoul(argv[4]) : 20;
  const ModelConfig tiny = load_model_config(root + "/examples/configs/tiny_deepseek_v3.json");
  const ModelConfig small = load_model_config(root + "/examples/configs/small_moe.json");
  const ModelConfig r1_zero = parse_model_config(kR1ZeroConfig, "examples/r1_zero/r1_zero.lua");

  const double peak = matmul_peak(repeats);
  fmt::print("square float32 matmul (1024): {:.1f} GFLOP/s, {} threads\n", peak / 1e9, torch::get_num_threads());
  fmt::print("{:<8} {:<16} {:>6} {:<9} {:>9} {:>8} {:>11} {:>8} {:>8}\n", "model", "case", "tokens", "experts",
             "ms/layer", "vs loop", "tokens/s", "GFLOP/s", "of peak");
  layer_table("r1_zero", r1_zero, train_tokens, repeats, peak);
  layer_table("tiny", tiny, train_tokens, repeats, peak);
  layer_table("small", small, train_tokens, repeats, peak);

  for (ExpertPath path : {ExpertPath::Loop, ExpertPath::Segments}) profile_step(tiny, path, 16, 128, rows);
  return 0;
}
