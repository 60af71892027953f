#include "policy/moe_router.h"

#include <limits>

#include "policy/projection.h"

namespace grpo {

MoeRouterImpl::MoeRouterImpl(const ModelConfig& c) : moe_(c.moe) {
  weight = register_parameter("weight", torch::empty({moe_.n_routed_experts, c.hidden_size}));
  if (moe_.topk_method == MoeTopkMethod::NoauxTc)
    e_score_correction_bias = register_buffer("e_score_correction_bias", torch::zeros({moe_.n_routed_experts}));
  reset_load();
}

void MoeRouterImpl::reset_load() { load_ = torch::zeros({moe_.n_routed_experts}, torch::kDouble); }

torch::Tensor MoeRouterImpl::select_experts(const torch::Tensor& scores) const {
  torch::Tensor biased = has_correction_bias() ? scores + e_score_correction_bias.to(scores.options()) : scores;
  if (moe_.topk_method != MoeTopkMethod::Greedy && moe_.n_group > 1) {
    const int64_t n = biased.size(0), per_group = moe_.n_routed_experts / moe_.n_group;
    torch::Tensor grouped = biased.view({n, moe_.n_group, per_group});
    torch::Tensor group_scores = moe_.topk_method == MoeTopkMethod::NoauxTc
                                     ? std::get<0>(grouped.topk(2, -1)).sum(-1)  // [N, n_group]
                                     : std::get<0>(grouped.max(-1));
    torch::Tensor kept_groups = std::get<1>(group_scores.topk(moe_.topk_group, -1));  // [N, topk_group]
    torch::Tensor keep = torch::zeros_like(group_scores, torch::kBool).scatter_(1, kept_groups, true);
    // -inf, not 0: with a bias, a masked expert at 0 could outrank kept experts with negative scores.
    biased = grouped.masked_fill(keep.logical_not().unsqueeze(-1), -std::numeric_limits<double>::infinity())
                 .view({n, moe_.n_routed_experts});
  }
  return std::get<1>(biased.topk(moe_.num_experts_per_tok, -1));
}

Routing MoeRouterImpl::forward(const torch::Tensor& x, const torch::Tensor& replay, const torch::Tensor& valid) {
  auto compute = x.scalar_type() == torch::kDouble ? torch::kDouble : torch::kFloat;
  torch::Tensor logits = project(x.to(compute), weight.to(compute));  // [N, E]
  torch::Tensor scores = moe_.scoring == MoeScoring::Sigmoid ? torch::sigmoid(logits) : torch::softmax(logits, -1);

  torch::Tensor experts;
  if (replay.defined()) {
    TORCH_CHECK(replay.size(0) == x.size(0) && replay.size(1) == moe_.num_experts_per_tok,
                "routing replay: expected [", x.size(0), ", ", moe_.num_experts_per_tok, "] experts, got ", replay.sizes());
    experts = replay.to(x.device(), torch::kLong);
  } else {
    torch::NoGradGuard no_grad;
    experts = select_experts(scores.detach());
  }
  torch::Tensor weights = scores.gather(1, experts);  // [N, top_k]
  if (moe_.norm_topk_prob) weights = weights / (weights.sum(-1, /*keepdim=*/true) + 1e-20);
  weights = weights * moe_.routed_scaling_factor;

  {
    torch::NoGradGuard no_grad;
    torch::Tensor counted = valid.defined() ? experts.index({valid.to(experts.device())}) : experts;
    load_ += torch::bincount(counted.reshape({-1}).cpu(), /*weights=*/{}, moe_.n_routed_experts).to(torch::kDouble);
  }
  return {experts, weights.to(x.scalar_type()), scores};
}

void MoeRouterImpl::update_bias(double gamma) {
  if (has_correction_bias()) {
    torch::NoGradGuard no_grad;
    torch::Tensor direction = torch::sign(load_.mean() - load_).to(e_score_correction_bias.options());
    e_score_correction_bias.add_(direction * gamma);
  }
  reset_load();
}

}  // namespace grpo
