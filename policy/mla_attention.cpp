#include "policy/mla_attention.h"

#include "policy/projection.h"

namespace grpo {

torch::Tensor per_head_matmul(const torch::Tensor& x, const torch::Tensor& w) {
  // Fast path (per-head product of one row) for torch::bmm below. When: N == 1, one query row per
  // head (a batch-1 decode step). A broadcast multiply and a sum over d compute the same products:
  // bmm issues one small BLAS call per head, which costs more. Parity test:
  // tests/policy_fast_paths.cpp ("fast path: per_head_matmul").
  if (x.size(1) == 1) return (x.transpose(1, 2) * w).sum(1, /*keepdim=*/true);  // [n_h, 1, e]
  return torch::bmm(x, w);  // [n_h, N, e]
}

MlaAttentionImpl::MlaAttentionImpl(const ModelConfig& c, int64_t layer_index)
    : layer_index_(layer_index),
      heads_(c.num_attention_heads),
      nope_dim_(c.mla.qk_nope_head_dim),
      rope_dim_(c.mla.qk_rope_head_dim),
      v_dim_(c.mla.v_head_dim),
      kv_rank_(c.mla.kv_lora_rank),
      scale_(c.attention_scale()),
      rope_(c.rope, c.mla.qk_rope_head_dim) {
  using torch::nn::Linear;
  using torch::nn::LinearOptions;
  const int64_t h = c.hidden_size, q_width = heads_ * (nope_dim_ + rope_dim_);
  auto linear = [](int64_t in, int64_t out) { return Linear(LinearOptions(in, out).bias(false)); };
  if (c.mla.q_lora_rank > 0) {
    q_a_proj = register_module("q_a_proj", linear(h, c.mla.q_lora_rank));
    q_a_layernorm = register_module("q_a_layernorm", RMSNorm(c.mla.q_lora_rank, c.rms_norm_eps));
    q_b_proj = register_module("q_b_proj", linear(c.mla.q_lora_rank, q_width));
  } else {
    q_proj = register_module("q_proj", linear(h, q_width));
  }
  kv_a_proj_with_mqa = register_module("kv_a_proj_with_mqa", linear(h, kv_rank_ + rope_dim_));
  kv_a_layernorm = register_module("kv_a_layernorm", RMSNorm(kv_rank_, c.rms_norm_eps));
  kv_b_proj = register_module("kv_b_proj", linear(kv_rank_, heads_ * (nope_dim_ + v_dim_)));
  o_proj = register_module("o_proj", linear(heads_ * v_dim_, h));
}

MlaAttentionImpl::Queries MlaAttentionImpl::queries(const torch::Tensor& x, const ForwardContext& ctx) {
  const int64_t b = x.size(0), t = x.size(1);
  torch::Tensor q = q_proj ? project(q_proj, x) : project(q_b_proj, q_a_layernorm(project(q_a_proj, x)));
  q = q.view({b, t, heads_, nope_dim_ + rope_dim_});
  return {q.narrow(-1, 0, nope_dim_), rope_.apply(q.narrow(-1, nope_dim_, rope_dim_), ctx.rope)};
}

torch::Tensor MlaAttentionImpl::forward(const torch::Tensor& x, ForwardContext& ctx) {
  const int64_t b = x.size(0), t = x.size(1);
  Queries q = queries(x, ctx);
  torch::Tensor kv = project(kv_a_proj_with_mqa, x);                      // [B, T, d_c + d_r]
  torch::Tensor latent = kv_a_layernorm(kv.narrow(-1, 0, kv_rank_));     // [B, T, d_c]
  torch::Tensor k_pe = kv.narrow(-1, kv_rank_, rope_dim_).unsqueeze(2);  // [B, T, 1, d_r]
  k_pe = rope_.apply(k_pe, ctx.rope).squeeze(2);                          // [B, T, d_r]

  torch::Tensor out;  // [B, T, n_h, d_v]
  if (!ctx.cache) {
    out = attend_naive(q, latent, k_pe, ctx);
  } else {
    torch::Tensor cached = ctx.cache->append_latent(layer_index_, latent, k_pe);  // [B, S, d_c + d_r]
    out = ctx.past > 0 ? attend_absorbed(q, cached, ctx)
                       : attend_naive(q, cached.narrow(-1, 0, kv_rank_), cached.narrow(-1, kv_rank_, rope_dim_), ctx);
  }
  return project(o_proj, out.reshape({b, t, heads_ * v_dim_}));
}

torch::Tensor MlaAttentionImpl::attend_naive(const Queries& queries, const torch::Tensor& latent,
                                             const torch::Tensor& k_pe, const ForwardContext& ctx) {
  const int64_t b = latent.size(0), s = latent.size(1);
  torch::Tensor q = torch::cat({queries.nope, queries.rope}, -1);                   // [B, T, n_h, d_nope + d_r]
  torch::Tensor kv = kv_b_proj(latent).view({b, s, heads_, nope_dim_ + v_dim_});  // [B, S, n_h, d_nope + d_v]
  torch::Tensor k_nope = kv.narrow(-1, 0, nope_dim_);
  torch::Tensor v = kv.narrow(-1, nope_dim_, v_dim_);
  torch::Tensor k = torch::cat({k_nope, k_pe.unsqueeze(2).expand({b, s, heads_, rope_dim_})}, -1);
  // As GQA with one query head per group: [B, n_h, 1, T, D] against [B, n_h, 1, S, D].
  torch::Tensor out = masked_attention(q.permute({0, 2, 1, 3}).unsqueeze(2), k.permute({0, 2, 1, 3}).unsqueeze(2),
                                       v.permute({0, 2, 1, 3}).unsqueeze(2), blocked_for_groups(ctx), scale_);
  return out.squeeze(2).permute({0, 2, 1, 3});  // [B, T, n_h, d_v]
}

torch::Tensor MlaAttentionImpl::attend_absorbed(const Queries& q, const torch::Tensor& cached, const ForwardContext& ctx) {
  const int64_t b = q.nope.size(0), t = q.nope.size(1);
  // W_kvb viewed per head: rows [0, d_nope) reconstruct keys (W_uk), rows [d_nope, d_nope + d_v) values (W_uv).
  torch::Tensor w = kv_b_proj->weight.view({heads_, nope_dim_ + v_dim_, kv_rank_});
  torch::Tensor w_uk = w.narrow(1, 0, nope_dim_);      // [n_h, d_nope, d_c]
  torch::Tensor w_uv = w.narrow(1, nope_dim_, v_dim_);  // [n_h, d_v, d_c]
  // Heads first, so that each head's query rows meet its own slice of W_kvb in one batched matmul.
  auto heads_first = [&](const torch::Tensor& x) { return x.permute({2, 0, 1, 3}).reshape({heads_, b * t, x.size(3)}); };

  // q_nope · (W_uk c) = (q_nope W_uk) · c: the query moves into latent space.
  torch::Tensor q_latent = per_head_matmul(heads_first(q.nope), w_uk);  // [n_h, B*T, d_c]
  // Scores over [latent ; rope key] in one matmul against the cache rows as they lie. Every head reads
  // the same latent: the heads form one group of n_h query rows ([B, 1, n_h, T, ...]), so the cached
  // latent is read once per step, not once per head.
  torch::Tensor q_cat = torch::cat({q_latent, heads_first(q.rope)}, -1).view({heads_, b, t, kv_rank_ + rope_dim_});
  torch::Tensor rows = cached.unsqueeze(1).unsqueeze(2);  // [B, 1, 1, S, d_c + d_r]
  torch::Tensor o_latent = masked_attention(q_cat.permute({1, 0, 2, 3}).unsqueeze(1), rows, rows.narrow(-1, 0, kv_rank_),
                                            blocked_for_groups(ctx), scale_);  // [B, 1, n_h, T, d_c]
  // Σ p·(W_uv c) = W_uv (Σ p·c): values leave latent space after the weighted sum.
  torch::Tensor out = per_head_matmul(heads_first(o_latent.squeeze(1).permute({0, 2, 1, 3})), w_uv.transpose(1, 2));  // [n_h, B*T, d_v]
  return out.view({heads_, b, t, v_dim_}).permute({1, 2, 0, 3});  // [B, T, n_h, d_v]
}

}  // namespace grpo
