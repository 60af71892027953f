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

  // Group (token, slot) pairs by expert (padding left out) and run every routed expert on its rows:
  // all at once on the grouped path, one after another on the reference loop (grouped_experts.h).
  // Parity test: tests/policy_grouped_experts.cpp.
  ExpertDispatch dispatch = dispatch_by_expert(routing.experts, routing.weights, valid, moe_.n_routed_experts);
  torch::Tensor out = run_routed_experts(expert_path_, flat, dispatch, expert_modules_);
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

void set_expert_path(torch::nn::Module& model, ExpertPath path) {
  for (const auto& module : model.modules(/*include_self=*/true))
    if (auto* moe = dynamic_cast<DeepSeekMoeImpl*>(module.get())) moe->set_expert_path(path);
}

}  // namespace grpo
