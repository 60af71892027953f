#pragma once
// The DeepSeekMoE router ("gate"): scores every routed expert for every token and picks top_k.
//
//   s      = sigmoid(x W^T) (V3)  or  softmax(x W^T) (V2)            router logits in float32
//   s_sel  = s + b                b = e_score_correction_bias (V3 noaux_tc only), for SELECTION only
//   groups: keep the topk_group best groups (V2: best expert; V3: sum of best two), mask the rest
//   idx    = topk(s_sel, top_k);  w = s[idx]  (UNBIASED scores)
//   w      = w / Σw  if norm_topk_prob;   w *= routed_scaling_factor
//
// Auxiliary-loss-free balancing (V3 §2.1.2) moves b, not W: after a step, each expert's bias rises by
// γ if it received fewer tokens than the mean and falls by γ if more. That update is an explicit call
// (update_bias) so a trainer can run it or freeze the bias.
#include <torch/torch.h>

#include <vector>

#include "policy/model_config.h"

namespace grpo {

struct Routing {
  torch::Tensor experts;  // [N, top_k] int64
  torch::Tensor weights;  // [N, top_k] (input dtype)
  torch::Tensor scores;   // [N, E] unbiased scores, float32 (float64 for float64 inputs)
};

// One token's routing, for the decode path that runs a lone token's experts directly.
struct TokenRoute {
  std::vector<int64_t> experts;  // top_k experts, in the order topk returns them (best biased score first)
  std::vector<double> weights;   // their gate weights, in the same order
};

class MoeRouterImpl : public torch::nn::Module {
 public:
  explicit MoeRouterImpl(const ModelConfig& config);

  // x: [N, hidden]. When `replay` is defined ([N, top_k]) those experts are used instead of selecting;
  // weights still come from the current scores, so gradients reach the router. `valid` ([N] bool)
  // marks real tokens: only they count toward the expert load.
  Routing forward(const torch::Tensor& x, const torch::Tensor& replay, const torch::Tensor& valid);

  // forward() for a single token on the CPU, selection computed on the host: the same experts and
  // weights, in the score dtype's arithmetic, without the two dozen small tensor ops a one-row
  // selection takes (a decode step of a small MoE is bound by its op count). x: [hidden]; `valid`
  // says whether it counts toward the expert load. Needs no autograd: the weights are plain numbers.
  TokenRoute route_token(const torch::Tensor& x, bool valid);

  // Expert selection from scores alone (exposed for tests): [N, E] -> [N, top_k].
  torch::Tensor select_experts(const torch::Tensor& scores) const;

  // Tokens routed to each expert since the last update_bias / reset_load, float64 [E].
  const torch::Tensor& load() const { return load_; }
  void reset_load();
  // b_i += γ · sign(mean load − load_i), then resets the load. No-op without a correction bias.
  void update_bias(double gamma);
  bool has_correction_bias() const { return e_score_correction_bias.defined(); }

  torch::Tensor weight;                   // [E, hidden], HF "weight"
  torch::Tensor e_score_correction_bias;  // [E] float32 buffer, HF "e_score_correction_bias" (noaux_tc only)

 private:
  template <typename Score>
  TokenRoute route_scores(const Score* scores) const;

  MoeConfig moe_;
  torch::Tensor load_;
};
TORCH_MODULE(MoeRouter);

}  // namespace grpo
