#pragma once
// DeepSeekMoE feed-forward (DeepSeekMoE paper; V2 §2.2, V3 §2.1.2): always-on shared experts plus
// fine-grained routed experts, of which each token uses top_k, weighted by the router.
//   y = SharedMLP(x) + Σ_{e ∈ topk(x)} w_e(x) · Expert_e(x)
// Optionally adds the sequence-wise balance loss of V3 (eq. 17-20) to the forward context:
//   L_bal = α Σ_i f_i P_i,  f_i = E/(K·T) Σ_t 1[i ∈ topk_t],  P_i = 1/T Σ_t s_{i,t} / Σ_j s_{j,t}
// averaged over the sequences of the batch (padding excluded).
// Tensor names follow transformers: gate.*, experts.N.{gate,up,down}_proj, shared_experts.*.
#include <torch/torch.h>

#include "policy/forward_context.h"
#include "policy/grouped_experts.h"
#include "policy/model_config.h"
#include "policy/moe_router.h"
#include "policy/swiglu_mlp.h"

namespace grpo {

class DeepSeekMoeImpl : public torch::nn::Module {
 public:
  // `moe_index`: this layer's position among the model's MoE layers (its slot in a RoutingTrace).
  DeepSeekMoeImpl(const ModelConfig& config, int64_t moe_index);
  torch::Tensor forward(const torch::Tensor& x, ForwardContext& ctx);  // [B, T, H] -> [B, T, H]
  // Whether forward(x, ctx) takes the lone-token fast path (forward_token) rather than the grouped
  // one; exposed so that tests hold one to the other.
  bool takes_token_path(const torch::Tensor& x, const ForwardContext& ctx) const;
  // How the routed experts run on a batch of more than one token (grouped_experts.h): Auto (the
  // faster here: the loop with autograd, contiguous segments without) unless GRPO_MOE_EXPERTS says
  // otherwise; the per-expert loop is the reference. Every path gives the same outputs and gradients
  // up to summation order.
  void set_expert_path(ExpertPath path) { expert_path_ = path; }
  ExpertPath expert_path() const { return expert_path_; }

  MoeRouter gate{nullptr};
  torch::nn::ModuleList experts{nullptr};
  SwiGluMlp shared_experts{nullptr};

 private:
  // The fast path for a single token without autograd on the CPU (see forward). x: [1, 1, H], valid:
  // [1] or undefined.
  torch::Tensor forward_token(const torch::Tensor& x, const torch::Tensor& valid, ForwardContext& ctx);
  torch::Tensor sequence_balance_loss(const Routing& routing, const torch::Tensor& token_mask, int64_t batch,
                                      int64_t length) const;

  MoeConfig moe_;
  int64_t moe_index_;
  std::vector<SwiGluMlp> expert_modules_;
  ExpertPath expert_path_ = initial_expert_path();
};
TORCH_MODULE(DeepSeekMoe);

// Sets the expert path of every DeepSeekMoE layer under `model` (a CausalLM, a decoder layer, ...).
void set_expert_path(torch::nn::Module& model, ExpertPath path);

}  // namespace grpo
