#pragma once
// One pre-norm transformer block; the family picks the attention and the feed-forward:
//   h = h + Attention(input_layernorm(h))           GQA (Llama, Qwen2) or MLA (DeepSeek)
//   h = h + FFN(post_attention_layernorm(h))        SwiGLU MLP, or DeepSeekMoE on MoE layers
#include <torch/torch.h>

#include "policy/deepseek_moe.h"
#include "policy/forward_context.h"
#include "policy/gqa_attention.h"
#include "policy/mla_attention.h"
#include "policy/model_config.h"
#include "policy/rms_norm.h"
#include "policy/swiglu_mlp.h"

namespace grpo {

class DecoderLayerImpl : public torch::nn::Module {
 public:
  // `moe_index`: position among MoE layers, or -1 for a dense layer.
  DecoderLayerImpl(const ModelConfig& config, int64_t layer_index, int64_t moe_index);
  torch::Tensor forward(const torch::Tensor& h, ForwardContext& ctx);  // [B, T, H] -> [B, T, H]

  RMSNorm input_layernorm{nullptr}, post_attention_layernorm{nullptr};
  // Exactly one of each pair is set; both register under transformers' names "self_attn" and "mlp".
  GqaAttention gqa{nullptr};
  MlaAttention mla{nullptr};
  SwiGluMlp dense_mlp{nullptr};
  DeepSeekMoe moe{nullptr};
};
TORCH_MODULE(DecoderLayer);

}  // namespace grpo
