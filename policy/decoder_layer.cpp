#include "policy/decoder_layer.h"

namespace grpo {

DecoderLayerImpl::DecoderLayerImpl(const ModelConfig& c, int64_t layer_index, int64_t moe_index) {
  input_layernorm = register_module("input_layernorm", RMSNorm(c.hidden_size, c.rms_norm_eps));
  if (c.uses_mla())
    mla = register_module("self_attn", MlaAttention(c, layer_index));
  else
    gqa = register_module("self_attn", GqaAttention(c, layer_index));
  post_attention_layernorm = register_module("post_attention_layernorm", RMSNorm(c.hidden_size, c.rms_norm_eps));
  if (moe_index >= 0)
    moe = register_module("mlp", DeepSeekMoe(c, moe_index));
  else
    dense_mlp = register_module("mlp", SwiGluMlp(c.hidden_size, c.intermediate_size));
}

torch::Tensor DecoderLayerImpl::forward(const torch::Tensor& h, ForwardContext& ctx) {
  torch::Tensor normed = input_layernorm(h);
  torch::Tensor x = h + (mla ? mla(normed, ctx) : gqa(normed, ctx));
  normed = post_attention_layernorm(x);
  return x + (moe ? moe(normed, ctx) : dense_mlp(normed));
}

}  // namespace grpo
