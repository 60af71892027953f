#include "policy/grouped_experts.h"

#include <algorithm>
#include <cstdlib>
#include <stdexcept>

#include "policy/projection.h"

namespace grpo {

ExpertPath parse_expert_path(const std::string& name) {
  if (name == "loop") return ExpertPath::Loop;
  if (name == "padded") return ExpertPath::Padded;
  if (name == "segments") return ExpertPath::Segments;
  if (name == "auto") return ExpertPath::Auto;
  throw std::invalid_argument("unknown MoE expert path '" + name + "': expected loop, padded, segments or auto");
}

const char* expert_path_name(ExpertPath path) {
  switch (path) {
    case ExpertPath::Loop: return "loop";
    case ExpertPath::Padded: return "padded";
    case ExpertPath::Segments: return "segments";
    case ExpertPath::Auto: return "auto";
  }
  return "?";
}

ExpertPath initial_expert_path() {
  const char* name = std::getenv("GRPO_MOE_EXPERTS");
  if (name == nullptr || *name == '\0') return kDefaultExpertPath;
  try {
    return parse_expert_path(name);
  } catch (const std::invalid_argument& e) {
    throw std::invalid_argument(std::string("GRPO_MOE_EXPERTS: ") + e.what());
  }
}

ExpertDispatch dispatch_by_expert(const torch::Tensor& experts, const torch::Tensor& weights,
                                  const torch::Tensor& valid, int64_t n_experts) {
  const int64_t k = experts.size(1);
  // Padding goes to a virtual expert that sorts after every real one and is then cut off: its output
  // would be ignored anyway, and an expert that ran only on padding would get a zero but defined
  // gradient, which AdamW turns into a momentum step whose presence would depend on how the batch
  // happens to be padded (one process vs. data-parallel ranks, micro-batch layout).
  const int64_t no_expert = n_experts;
  torch::Tensor flat_experts = experts.reshape({-1});  // [N*k]
  if (valid.defined()) flat_experts = flat_experts.masked_fill(valid.repeat_interleave(k).logical_not(), no_expert);
  torch::Tensor order = flat_experts.argsort();
  ExpertDispatch d;
  d.counts.resize(n_experts);
  torch::Tensor count_tensor = torch::bincount(flat_experts.cpu(), {}, n_experts + 1);
  std::copy_n(count_tensor.data_ptr<int64_t>(), n_experts, d.counts.begin());
  int64_t real_pairs = 0;
  for (int64_t c : d.counts) real_pairs += c;
  order = order.narrow(0, 0, real_pairs);
  d.token_of_slot = order.div(k, "floor");
  d.weight_of_slot = weights.reshape({-1}).index_select(0, order);
  return d;
}

namespace {

// Reference: each expert on its own rows, results added in expert order.
torch::Tensor run_loop(const torch::Tensor& x, const ExpertDispatch& d, const std::vector<SwiGluMlp>& experts) {
  const bool in_place = !torch::GradMode::is_enabled();
  torch::Tensor out = torch::zeros_like(x);
  int64_t start = 0;
  for (size_t e = 0; e < experts.size(); ++e) {
    const int64_t count = d.counts[e];
    if (count == 0) continue;
    torch::Tensor tokens = d.token_of_slot.narrow(0, start, count);
    torch::Tensor y = experts[e].ptr()->forward(x.index_select(0, tokens)) * d.weight_of_slot.narrow(0, start, count).unsqueeze(1);
    out = in_place ? out.index_add_(0, tokens, y) : out.index_add(0, tokens, y);
    start += count;
  }
  return out;
}

// The weighted expert outputs of the sorted pairs ([M, H], in dispatch order) summed per token.
torch::Tensor combine(const torch::Tensor& x, const ExpertDispatch& d, const torch::Tensor& sorted_outputs) {
  return torch::zeros_like(x).index_add_(0, d.token_of_slot, sorted_outputs * d.weight_of_slot.unsqueeze(1));
}

torch::Tensor run_segments(const torch::Tensor& x, const ExpertDispatch& d, const std::vector<SwiGluMlp>& experts) {
  std::vector<int64_t> active, sizes;
  for (size_t e = 0; e < experts.size(); ++e)
    if (d.counts[e] > 0) active.push_back(static_cast<int64_t>(e)), sizes.push_back(d.counts[e]);
  if (active.empty()) return torch::zeros_like(x);
  // Segments by split_with_sizes, not one narrow per expert: the backward of a narrow fills a zero
  // tensor of the whole [M, ...] input per expert, split's backward concatenates the segments' grads
  // once.
  std::vector<torch::Tensor> segments = x.index_select(0, d.token_of_slot).split_with_sizes(sizes);  // [c_e, H]
  // Gate and up stay two products per expert. Fusing them over the two weights side by side (torch::cat,
  // so each keeps its gradient) measured slower here on a training batch (bench_moe_experts: tiny
  // 127 ms against 50 ms for the loop), and without autograd the copy costs more than it saves.
  std::vector<torch::Tensor> gate, up;
  for (size_t a = 0; a < active.size(); ++a) {
    const SwiGluMlpImpl& expert = *experts[active[a]];
    gate.push_back(project(segments[a], expert.gate_proj->weight));
    up.push_back(project(segments[a], expert.up_proj->weight));
  }
  torch::Tensor hidden = torch::silu(torch::cat(gate)) * torch::cat(up);  // [M, I]
  std::vector<torch::Tensor> hidden_segments = hidden.split_with_sizes(sizes), down;
  for (size_t a = 0; a < active.size(); ++a) down.push_back(project(experts[active[a]]->down_proj, hidden_segments[a]));
  return combine(x, d, torch::cat(down));
}

torch::Tensor run_padded(const torch::Tensor& x, const ExpertDispatch& d, const std::vector<SwiGluMlp>& experts) {
  std::vector<int64_t> active;
  int64_t capacity = 0;
  for (size_t e = 0; e < experts.size(); ++e)
    if (d.counts[e] > 0) active.push_back(static_cast<int64_t>(e)), capacity = std::max(capacity, d.counts[e]);
  if (active.empty()) return torch::zeros_like(x);
  const int64_t n = static_cast<int64_t>(active.size()), h = x.size(1);
  const int64_t inter = experts[active[0]]->gate_proj->weight.size(0);

  // Row r of expert rank a in the padded layout reads token padded_tokens[a·C + r]; sorted pair i sits
  // at padded_position[i]. Padding rows read token 0: finite values whose outputs are never gathered
  // back, so they add exact zeros to every gradient.
  torch::Tensor tokens = d.token_of_slot.cpu();
  const int64_t* token = tokens.data_ptr<int64_t>();
  std::vector<int64_t> padded_tokens(n * capacity, 0), padded_position;
  padded_position.reserve(tokens.numel());
  int64_t start = 0;
  for (int64_t a = 0; a < n; ++a) {
    const int64_t count = d.counts[active[a]];
    for (int64_t r = 0; r < count; ++r) {
      padded_tokens[a * capacity + r] = token[start + r];
      padded_position.push_back(a * capacity + r);
    }
    start += count;
  }
  auto index = [&](const std::vector<int64_t>& v) {
    return torch::tensor(v, torch::kLong).to(x.device());
  };

  // Gate and up rows of each expert interleaved: stack gives [2n, I, H], viewed as [n, 2I, H].
  std::vector<torch::Tensor> gate_up, down;
  for (int64_t e : active) {
    gate_up.push_back(experts[e]->gate_proj->weight);
    gate_up.push_back(experts[e]->up_proj->weight);
    down.push_back(experts[e]->down_proj->weight);
  }
  torch::Tensor w_gate_up = torch::stack(gate_up).view({n, 2 * inter, h});  // [n, 2I, H]
  torch::Tensor w_down = torch::stack(down);                                // [n, H, I]

  torch::Tensor rows = x.index_select(0, index(padded_tokens)).view({n, capacity, h});  // [n, C, H]
  torch::Tensor projected = torch::bmm(rows, w_gate_up.transpose(1, 2));                // [n, C, 2I]
  torch::Tensor hidden = torch::silu(projected.narrow(2, 0, inter)) * projected.narrow(2, inter, inter);
  torch::Tensor outputs = torch::bmm(hidden, w_down.transpose(1, 2));                    // [n, C, H]
  return combine(x, d, outputs.view({n * capacity, h}).index_select(0, index(padded_position)));
}

}  // namespace

torch::Tensor run_routed_experts(ExpertPath path, const torch::Tensor& x, const ExpertDispatch& dispatch,
                                 const std::vector<SwiGluMlp>& experts) {
  TORCH_CHECK(dispatch.counts.size() == experts.size(), "expert dispatch counts ", dispatch.counts.size(),
              " experts, the layer has ", experts.size());
  switch (path) {
    case ExpertPath::Loop: return run_loop(x, dispatch, experts);
    case ExpertPath::Padded: return run_padded(x, dispatch, experts);
    case ExpertPath::Segments: return run_segments(x, dispatch, experts);
    case ExpertPath::Auto:
      return torch::GradMode::is_enabled() ? run_loop(x, dispatch, experts) : run_segments(x, dispatch, experts);
  }
  return run_loop(x, dispatch, experts);
}

}  // namespace grpo
