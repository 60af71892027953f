#pragma once
// Grouped-query attention (Ainslie et al. 2023) as in Llama and Qwen2: n_kv key/value heads, each
// shared by num_attention_heads / n_kv query heads; rotate-half RoPE on the whole head; optional
// q/k/v bias (Qwen2). Tensor names follow transformers: q_proj, k_proj, v_proj, o_proj.
#include <torch/torch.h>

#include "policy/scalar_constant.h"

#include "policy/forward_context.h"
#include "policy/fused_linears.h"
#include "policy/model_config.h"

namespace grpo {

class GqaAttentionImpl : public torch::nn::Module {
 public:
  GqaAttentionImpl(const ModelConfig& config, int64_t layer_index);
  torch::Tensor forward(const torch::Tensor& x, ForwardContext& ctx);  // [B, T, H] -> [B, T, H]

  torch::nn::Linear q_proj{nullptr}, k_proj{nullptr}, v_proj{nullptr}, o_proj{nullptr};

 private:
  // q_proj, k_proj and v_proj as one product (their weights are rows of one stacked tensor).
  std::unique_ptr<FusedLinears> qkv_;
  int64_t layer_index_, heads_, kv_heads_, head_dim_;
  ScalarConstant scale_;
  RotaryEmbedding rope_;
};
TORCH_MODULE(GqaAttention);

}  // namespace grpo
