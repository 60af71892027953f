#pragma once
// What every decoder layer of one forward pass shares: positions, rope angles, the attention mask,
// the KV cache and MoE routing record/replay. Built once per forward by CausalLM.
#include <torch/torch.h>

#include <vector>

#include "policy/kv_cache.h"
#include "policy/rotary_embedding.h"
#include "policy/scalar_constant.h"

namespace grpo {

// The experts each token was routed to, per MoE layer. Recorded at rollout and replayed in training
// ("routing replay"), so the policy-gradient ratio compares the same sub-networks.
struct RoutingTrace {
  enum class Mode { Record, Replay };
  Mode mode = Mode::Record;
  std::vector<torch::Tensor> experts;  // per MoE layer, in layer order: [B, T, top_k] int64
};

struct ForwardContext {
  RopeAngles rope;           // [B, T, 1, rope_dim]
  torch::Tensor blocked;     // [B, 1, T, S] bool: key s is hidden from query t (future or padding);
                             // undefined when nothing is hidden (a decode step without padding)
  torch::Tensor token_mask;  // [B, T] bool: real tokens of this forward (not padding)
  KVCache* cache = nullptr;  // appended to when set
  int64_t past = 0;          // positions already in the cache
  RoutingTrace* routing = nullptr;
  torch::Tensor aux_loss;    // summed MoE balance loss of this forward (undefined when none)
};

// The keys hidden from each query of a forward over `t` new positions after `past` cached ones: later
// positions (causality) and padding. attention_mask: [B, S] bool, S = past + t, true = real token.
// Returns [B, 1, t, S] bool, true = hidden. The general path; forward uses blocked_keys.
torch::Tensor causal_padding_mask(const torch::Tensor& attention_mask, int64_t past, int64_t t);

// What a forward hands to attention as ForwardContext::blocked: causal_padding_mask, or for a single
// new token a cheaper mask that hides the same keys, or none at all (see masked_attention.cpp).
torch::Tensor blocked_keys(const torch::Tensor& attention_mask, int64_t past, int64_t t);

// softmax(scores · scale, blocked keys excluded) · values with scores in float32 (float64 for float64
// inputs). q: [B, G, R, T, D] keys: [B, G, 1, S, D] values: [B, G, 1, S, Dv] blocked: bool,
// broadcastable to [B, G, R, T, S], or undefined (every key visible). G groups share one key/value head (GQA), R query heads per group.
// Returns [B, G, R, T, Dv]. Fully blocked rows (padding queries) give finite, ignorable outputs.
torch::Tensor masked_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                               const torch::Tensor& blocked, const ScalarConstant& scale);

// ctx.blocked laid out for masked_attention's [B, G, R, T, S] (undefined stays undefined).
inline torch::Tensor blocked_for_groups(const ForwardContext& ctx) {
  return ctx.blocked.defined() ? ctx.blocked.unsqueeze(1) : ctx.blocked;
}

}  // namespace grpo
