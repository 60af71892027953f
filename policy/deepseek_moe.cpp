#include "policy/deepseek_moe.h"

#include <algorithm>
#include <utility>
#include <vector>

namespace grpo {

DeepSeekMoeImpl::DeepSeekMoeImpl(const ModelConfig& c, int64_t moe_index) : moe_(c.moe), moe_index_(moe_index) {
  gate = register_module("gate", MoeRouter(c));
  experts = register_module("experts", torch::nn::ModuleList());
  for (int64_t e = 0; e < moe_.n_routed_experts; ++e) {
    expert_modules_.push_back(SwiGluMlp(c.hidden_size, moe_.moe_intermediate_size));
    experts->push_back(expert_modules_.back());
  }
  if (moe_.n_shared_experts > 0)
    shared_experts = register_module("shared_experts",
                                     SwiGluMlp(c.hidden_size, moe_.n_shared_experts * moe_.moe_intermediate_size));
}

bool DeepSeekMoeImpl::takes_token_path(const torch::Tensor& x, const ForwardContext& ctx) const {
  const bool replaying = ctx.routing && ctx.routing->mode == RoutingTrace::Mode::Replay;
  const bool balance_loss = moe_.aux_loss_alpha > 0 && is_training();
  return !torch::GradMode::is_enabled() && x.size(0) * x.size(1) == 1 && x.is_cpu() && !replaying && !balance_loss;
}

torch::Tensor DeepSeekMoeImpl::forward(const torch::Tensor& x, ForwardContext& ctx) {
  const int64_t b = x.size(0), t = x.size(1), h = x.size(2), k = moe_.num_experts_per_tok;
  const bool replaying = ctx.routing && ctx.routing->mode == RoutingTrace::Mode::Replay;
  const bool recording = ctx.routing && ctx.routing->mode == RoutingTrace::Mode::Record;
  torch::Tensor valid = ctx.token_mask.defined() ? ctx.token_mask.reshape({b * t}) : torch::Tensor();
  // Without autograd (rollout, reference) results accumulate in place; with it, out-of-place keeps
  // every intermediate for the backward pass.
  const bool in_place = !torch::GradMode::is_enabled();
  const bool balance_loss = moe_.aux_loss_alpha > 0 && is_training();
  // Fast path (lone-token MoE, forward_token) for the grouped path below. When: one token (B·T == 1)
  // on the CPU, without autograd, not replaying a routing trace, no balance loss: batch-1 decoding.
  // The token is routed on the host (MoeRouter::route_token) and its top_k experts run directly on
  // its [H] vector, instead of sorting, counting and gathering tokens by expert: the same experts,
  // weights, load counts and recorded trace, summed in the same expert order. Parity test:
  // tests/policy_fast_paths.cpp ("fast path: forward_token").
  if (takes_token_path(x, ctx)) return forward_token(x, valid, ctx);

  torch::Tensor flat = x.reshape({b * t, h});  // [N, H]
  torch::Tensor replay;
  if (replaying) {
    TORCH_CHECK(moe_index_ < static_cast<int64_t>(ctx.routing->experts.size()),
                "routing replay: trace has ", ctx.routing->experts.size(), " MoE layers, layer ", moe_index_, " needed");
    replay = ctx.routing->experts[moe_index_].reshape({b * t, k});
  }
  Routing routing = gate(flat, replay, valid);
  if (recording) ctx.routing->experts.push_back(routing.experts.view({b, t, k}));

  torch::Tensor out = torch::zeros_like(flat);
  // Group (token, slot) pairs by expert so each expert runs once on all of its tokens. Padding goes to
  // no routed expert: its output is ignored anyway, and an expert that ran only on padding would get a
  // zero but defined gradient, which AdamW turns into a momentum step whose presence would depend on
  // how the batch happens to be padded (one process vs. data-parallel ranks, micro-batch layout).
  const int64_t no_expert = moe_.n_routed_experts;  // sorts after every real expert
  torch::Tensor flat_experts = routing.experts.reshape({-1});  // [N*k]
  if (valid.defined()) flat_experts = flat_experts.masked_fill(valid.repeat_interleave(k).logical_not(), no_expert);
  torch::Tensor order = flat_experts.argsort();
  torch::Tensor token_of_slot = order.div(k, "floor");           // token index of each sorted slot
  torch::Tensor weight_of_slot = routing.weights.reshape({-1}).index_select(0, order);
  std::vector<int64_t> counts(moe_.n_routed_experts);
  torch::Tensor count_tensor = torch::bincount(flat_experts.cpu(), {}, moe_.n_routed_experts + 1);
  std::copy_n(count_tensor.data_ptr<int64_t>(), moe_.n_routed_experts, counts.begin());

  int64_t start = 0;
  for (int64_t e = 0; e < moe_.n_routed_experts; ++e) {
    if (counts[e] == 0) continue;
    torch::Tensor tokens = token_of_slot.narrow(0, start, counts[e]);
    torch::Tensor y = expert_modules_[e](flat.index_select(0, tokens)) * weight_of_slot.narrow(0, start, counts[e]).unsqueeze(1);
    out = in_place ? out.index_add_(0, tokens, y) : out.index_add(0, tokens, y);
    start += counts[e];
  }
  if (shared_experts) out = out + shared_experts(flat);

  if (balance_loss) {
    torch::Tensor loss = sequence_balance_loss(routing, ctx.token_mask, b, t);
    ctx.aux_loss = ctx.aux_loss.defined() ? ctx.aux_loss + loss : loss;
  }
  return out.view({b, t, h});
}

torch::Tensor DeepSeekMoeImpl::forward_token(const torch::Tensor& x, const torch::Tensor& valid, ForwardContext& ctx) {
  // One token (batch-1 decoding): routed on the host, then its top_k experts run directly on the
  // [hidden] vector, summed in expert order as the grouped path sums them. A padding token is routed
  // and recorded but, as in the grouped path, runs through the shared experts only.
  torch::Tensor token = x.reshape({x.size(-1)});  // [H]
  const bool real = !valid.defined() || valid.item<bool>();
  TokenRoute route = gate->route_token(token, real);
  if (ctx.routing) ctx.routing->experts.push_back(torch::tensor(route.experts, torch::kLong).view({1, 1, -1}));
  std::vector<std::pair<int64_t, double>> chosen;  // (expert, weight)
  if (real)
    for (size_t j = 0; j < route.experts.size(); ++j) chosen.push_back({route.experts[j], route.weights[j]});
  std::sort(chosen.begin(), chosen.end());
  torch::Tensor out = torch::zeros_like(token);
  for (const auto& [expert, weight] : chosen) out.add_(expert_modules_[expert](token), weight);
  if (shared_experts) out.add_(shared_experts(token));
  return out.view(x.sizes());
}

torch::Tensor DeepSeekMoeImpl::sequence_balance_loss(const Routing& routing, const torch::Tensor& token_mask,
                                                     int64_t batch, int64_t length) const {
  const int64_t e = moe_.n_routed_experts, k = moe_.num_experts_per_tok;
  torch::Tensor scores = routing.scores.view({batch, length, e});
  torch::Tensor mask = token_mask.defined() ? token_mask.to(scores.options()) : torch::ones({batch, length}, scores.options());
  torch::Tensor tokens = mask.sum(1).clamp_min(1.0);  // [B] real tokens per sequence
  torch::Tensor chosen = torch::zeros({batch * length, e}, scores.options())
                             .scatter_(1, routing.experts, 1.0)
                             .view({batch, length, e});
  torch::Tensor f = (chosen * mask.unsqueeze(-1)).sum(1) * (static_cast<double>(e) / k) / tokens.unsqueeze(-1);  // [B, E]
  torch::Tensor normalised = scores / scores.sum(-1, /*keepdim=*/true);
  torch::Tensor p = (normalised * mask.unsqueeze(-1)).sum(1) / tokens.unsqueeze(-1);  // [B, E]
  return moe_.aux_loss_alpha * (f * p).sum(-1).mean();
}

}  // namespace grpo
