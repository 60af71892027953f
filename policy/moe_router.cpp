#include "policy/moe_router.h"

#include <algorithm>
#include <limits>
#include <numeric>

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

// Fast path (host-side routing of one token: route_token, route_scores) for this function's
// selection (select_experts, above) and weighting. When: one token's [hidden] activations on the CPU
// without autograd, the MoE layer's lone-token path (DeepSeekMoe::forward_token). The same selection
// and weights, computed on one row of scores with std:: algorithms in the score dtype's arithmetic
// instead of two dozen small tensor ops. Parity test: tests/policy_fast_paths.cpp ("fast path:
// route_token").
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

TokenRoute MoeRouterImpl::route_token(const torch::Tensor& x, bool valid) {
  TORCH_CHECK(x.dim() == 1 && x.is_cpu(), "route_token: need one token's [hidden] activations on the CPU, got ", x.sizes());
  auto compute = x.scalar_type() == torch::kDouble ? torch::kDouble : torch::kFloat;
  torch::Tensor logits = torch::mv(weight.to(compute), x.to(compute));  // [E]
  torch::Tensor scores = (moe_.scoring == MoeScoring::Sigmoid ? torch::sigmoid(logits) : torch::softmax(logits, -1)).contiguous();
  TokenRoute route = compute == torch::kDouble ? route_scores(scores.data_ptr<double>()) : route_scores(scores.data_ptr<float>());
  if (valid) {
    double* load = load_.data_ptr<double>();
    for (int64_t e : route.experts) load[e] += 1.0;
  }
  return route;
}

// select_experts and the weighting of forward(), step by step on one row of scores, in Score arithmetic.
template <typename Score>
TokenRoute MoeRouterImpl::route_scores(const Score* scores) const {
  const int64_t n = moe_.n_routed_experts, k = moe_.num_experts_per_tok;
  std::vector<Score> biased(scores, scores + n);
  if (has_correction_bias()) {
    torch::Tensor bias = e_score_correction_bias.to(torch::kCPU, torch::kFloat).contiguous();
    for (int64_t e = 0; e < n; ++e) biased[e] += static_cast<Score>(bias.data_ptr<float>()[e]);
  }
  auto best_first = [&](int64_t a, int64_t b) { return biased[a] > biased[b] || (biased[a] == biased[b] && a < b); };
  if (moe_.topk_method != MoeTopkMethod::Greedy && moe_.n_group > 1) {
    const int64_t per_group = n / moe_.n_group;
    std::vector<Score> group_score(moe_.n_group);
    for (int64_t g = 0; g < moe_.n_group; ++g) {
      std::vector<Score> members(biased.begin() + g * per_group, biased.begin() + (g + 1) * per_group);
      std::sort(members.begin(), members.end(), std::greater<Score>());
      // noaux_tc: the sum of the group's best two; group_limited_greedy: its best.
      group_score[g] = moe_.topk_method == MoeTopkMethod::NoauxTc ? members[0] + members[1] : members[0];
    }
    std::vector<int64_t> groups(moe_.n_group);
    std::iota(groups.begin(), groups.end(), 0);
    std::stable_sort(groups.begin(), groups.end(), [&](int64_t a, int64_t b) { return group_score[a] > group_score[b]; });
    for (int64_t i = moe_.topk_group; i < moe_.n_group; ++i)
      std::fill_n(biased.begin() + groups[i] * per_group, per_group, -std::numeric_limits<Score>::infinity());
  }
  std::vector<int64_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::partial_sort(order.begin(), order.begin() + k, order.end(), best_first);

  TokenRoute route;
  route.experts.assign(order.begin(), order.begin() + k);
  std::vector<Score> w(k);
  for (int64_t j = 0; j < k; ++j) w[j] = scores[route.experts[j]];
  if (moe_.norm_topk_prob) {
    Score sum = 0;
    for (Score v : w) sum += v;
    for (Score& v : w) v = v / (sum + static_cast<Score>(1e-20));
  }
  for (Score v : w) route.weights.push_back(static_cast<double>(v * static_cast<Score>(moe_.routed_scaling_factor)));
  return route;
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
