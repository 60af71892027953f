#pragma once
// Sizes computed from a config alone, without allocating a model: parameter counts (total and
// activated per token) and KV-cache values per token. Used by `grpo inspect` and by memory planning.

#include <cstdint>

#include "policy/model_config.h"

namespace grpo {

struct ParameterCounts {
  int64_t total = 0;          // every trainable tensor, tied embeddings counted once
  int64_t embedding = 0;      // the input embedding table
  int64_t lm_head = 0;        // 0 when tied to the embedding
  int64_t routed_experts = 0; // all routed experts of all MoE layers
  // Parameters one token passes through: the top-k routed experts instead of all, and the output head,
  // but NOT the input embedding table (a lookup, not compute). This is the convention of the
  // DeepSeek-V2 paper's "2.4B activated" for V2-Lite. Buffers such as the router's
  // e_score_correction_bias are not parameters and are not counted.
  int64_t activated_per_token = 0;
};

ParameterCounts count_parameters(const ModelConfig& config);

// Values stored per token over all layers. MLA caches only the compressed latent and the shared rope
// key (kv_lora_rank + qk_rope_head_dim); GQA caches K and V for each KV head.
int64_t kv_cache_values_per_token(const ModelConfig& config);
// What a plain multi-head cache of the same model would store (MLA: per-head K and V materialised);
// equals kv_cache_values_per_token for GQA models.
int64_t full_kv_values_per_token(const ModelConfig& config);

}  // namespace grpo
