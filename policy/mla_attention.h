#pragma once
// Multi-head Latent Attention (DeepSeek-V2 §2.1, V3 §2.1.1). Keys and values are reconstructed from a
// low-rank latent c_kv (kv_lora_rank) shared by all heads, plus one decoupled rotary key k_pe shared
// by all heads; queries optionally go through their own low-rank bottleneck (q_lora_rank).
//
// Two mathematically identical paths:
//  - naive (training, prefill): materialise per-head K = [W_uk c ; k_pe] and V = W_uv c;
//  - absorbed (decoding from the cache): fold W_uk into the query and W_uv into the output, so
//    attention runs directly over the cached latents and nothing per-head is ever stored.
// Tensor names follow transformers: q_proj | q_a_proj, q_a_layernorm, q_b_proj; kv_a_proj_with_mqa,
// kv_a_layernorm, kv_b_proj, o_proj.
#include <torch/torch.h>

#include "policy/scalar_constant.h"

#include "policy/forward_context.h"
#include "policy/model_config.h"
#include "policy/rms_norm.h"

namespace grpo {

// x: [n_h, N, d] times per-head matrices w: [n_h, d, e] -> [n_h, N, e]: the absorbed path's products
// of every head's query or output rows with its own slice of W_kvb. One row (N == 1) takes a fast path.
torch::Tensor per_head_matmul(const torch::Tensor& x, const torch::Tensor& w);

class MlaAttentionImpl : public torch::nn::Module {
 public:
  MlaAttentionImpl(const ModelConfig& config, int64_t layer_index);
  // [B, T, H] -> [B, T, H]. Uses the absorbed path when decoding from a non-empty cache.
  torch::Tensor forward(const torch::Tensor& x, ForwardContext& ctx);

  torch::nn::Linear q_proj{nullptr};                  // when q_lora_rank == 0
  torch::nn::Linear q_a_proj{nullptr}, q_b_proj{nullptr};  // when q_lora_rank > 0
  RMSNorm q_a_layernorm{nullptr};
  torch::nn::Linear kv_a_proj_with_mqa{nullptr}, kv_b_proj{nullptr}, o_proj{nullptr};
  RMSNorm kv_a_layernorm{nullptr};

 private:
  struct Queries {
    torch::Tensor nope;  // [B, T, n_h, d_nope]
    torch::Tensor rope;  // [B, T, n_h, d_r], rotated
  };
  Queries queries(const torch::Tensor& x, const ForwardContext& ctx);
  // latent: [B, S, d_c], k_pe: [B, S, d_r] -> [B, T, n_h, d_v]
  torch::Tensor attend_naive(const Queries& q, const torch::Tensor& latent, const torch::Tensor& k_pe,
                             const ForwardContext& ctx);
  // cached: [B, S, d_c + d_r], the cache rows as KVCache::append_latent returns them -> [B, T, n_h, d_v]
  torch::Tensor attend_absorbed(const Queries& q, const torch::Tensor& cached, const ForwardContext& ctx);

  int64_t layer_index_, heads_, nope_dim_, rope_dim_, v_dim_, kv_rank_;
  ScalarConstant scale_;
  RotaryEmbedding rope_;
};
TORCH_MODULE(MlaAttention);

}  // namespace grpo
