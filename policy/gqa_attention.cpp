#include "policy/gqa_attention.h"

#include "policy/projection.h"

namespace grpo {

GqaAttentionImpl::GqaAttentionImpl(const ModelConfig& c, int64_t layer_index)
    : layer_index_(layer_index),
      heads_(c.num_attention_heads),
      kv_heads_(c.num_key_value_heads),
      head_dim_(c.head_dim),
      scale_(c.attention_scale()),
      rope_(c.rope, c.head_dim) {
  using torch::nn::LinearOptions;
  const int64_t h = c.hidden_size;
  q_proj = register_module("q_proj", torch::nn::Linear(LinearOptions(h, heads_ * head_dim_).bias(c.attention_bias)));
  k_proj = register_module("k_proj", torch::nn::Linear(LinearOptions(h, kv_heads_ * head_dim_).bias(c.attention_bias)));
  v_proj = register_module("v_proj", torch::nn::Linear(LinearOptions(h, kv_heads_ * head_dim_).bias(c.attention_bias)));
  o_proj = register_module("o_proj", torch::nn::Linear(LinearOptions(heads_ * head_dim_, h).bias(false)));
  qkv_ = std::make_unique<FusedLinears>(std::vector<torch::nn::Linear>{q_proj, k_proj, v_proj});
}

torch::Tensor GqaAttentionImpl::forward(const torch::Tensor& x, ForwardContext& ctx) {
  const int64_t b = x.size(0), t = x.size(1);
  // One product for the three projections; q, k and v are column blocks of its output.
  std::vector<torch::Tensor> qkv = qkv_->forward_split(x);
  torch::Tensor q = qkv[0].view({b, t, heads_, head_dim_});     // [B, T, H, D]
  torch::Tensor k = qkv[1].view({b, t, kv_heads_, head_dim_});  // [B, T, Hkv, D]
  torch::Tensor v = qkv[2].view({b, t, kv_heads_, head_dim_});  // [B, T, Hkv, D]
  q = rope_.apply(q, ctx.rope);
  k = rope_.apply(k, ctx.rope);
  if (ctx.cache) {
    std::tie(k, v) = ctx.cache->append(layer_index_, k, v);  // [B, Hkv, S, D], head-major
  } else {
    k = k.permute({0, 2, 1, 3});  // [B, Hkv, T, D]
    v = v.permute({0, 2, 1, 3});
  }
  const int64_t group = heads_ / kv_heads_;

  // Query heads of one group attend the same key head: [B, Hkv, group, T, D] against [B, Hkv, 1, S, D].
  torch::Tensor qg = q.view({b, t, kv_heads_, group, head_dim_}).permute({0, 2, 3, 1, 4});
  torch::Tensor kg = k.unsqueeze(2);
  torch::Tensor vg = v.unsqueeze(2);
  torch::Tensor out = masked_attention(qg, kg, vg, blocked_for_groups(ctx), scale_);  // [B, Hkv, group, T, D]
  out = out.permute({0, 3, 1, 2, 4}).reshape({b, t, heads_ * head_dim_});
  return project(o_proj, out);
}

}  // namespace grpo
