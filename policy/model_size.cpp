#include "policy/model_size.h"

namespace grpo {
namespace {

int64_t attention_parameters(const ModelConfig& c) {
  const int64_t h = c.hidden_size, heads = c.num_attention_heads;
  if (c.uses_mla()) {
    const MlaConfig& m = c.mla;
    const int64_t q_width = heads * (m.qk_nope_head_dim + m.qk_rope_head_dim);
    int64_t q = m.q_lora_rank > 0 ? m.q_lora_rank * h + m.q_lora_rank + q_width * m.q_lora_rank  // q_a, norm, q_b
                                  : q_width * h;                                                 // q_proj
    int64_t kv = (m.kv_lora_rank + m.qk_rope_head_dim) * h   // kv_a_proj_with_mqa
                 + m.kv_lora_rank                            // kv_a_layernorm
                 + heads * (m.qk_nope_head_dim + m.v_head_dim) * m.kv_lora_rank;  // kv_b_proj
    int64_t o = h * heads * m.v_head_dim;
    return q + kv + o;
  }
  const int64_t q_width = heads * c.head_dim, kv_width = c.num_key_value_heads * c.head_dim;
  int64_t weights = q_width * h + 2 * kv_width * h + h * q_width;
  int64_t biases = c.attention_bias ? q_width + 2 * kv_width : 0;
  return weights + biases;
}

int64_t swiglu_parameters(int64_t hidden, int64_t intermediate) { return 3 * hidden * intermediate; }

}  // namespace

ParameterCounts count_parameters(const ModelConfig& c) {
  ParameterCounts p;
  const int64_t h = c.hidden_size;
  p.embedding = c.vocab_size * h;
  p.lm_head = c.tie_word_embeddings ? 0 : c.vocab_size * h;
  int64_t layers_total = 0, layers_active = 0;
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    int64_t common = attention_parameters(c) + 2 * h;  // + input and post-attention RMSNorm
    if (!c.is_moe_layer(l)) {
      int64_t mlp = swiglu_parameters(h, c.intermediate_size);
      layers_total += common + mlp;
      layers_active += common + mlp;
      continue;
    }
    const MoeConfig& m = c.moe;
    int64_t expert = swiglu_parameters(h, m.moe_intermediate_size);
    int64_t shared = m.n_shared_experts > 0 ? swiglu_parameters(h, m.n_shared_experts * m.moe_intermediate_size) : 0;
    int64_t router = m.n_routed_experts * h;
    p.routed_experts += m.n_routed_experts * expert;
    layers_total += common + router + shared + m.n_routed_experts * expert;
    layers_active += common + router + shared + m.num_experts_per_tok * expert;
  }
  p.total = p.embedding + p.lm_head + layers_total + h;  // + final norm
  // A tied head is the embedding matrix used as a projection: it is activated even though stored once.
  p.activated_per_token = layers_active + h + c.vocab_size * h;
  return p;
}

int64_t kv_cache_values_per_token(const ModelConfig& c) {
  if (c.uses_mla()) return c.num_hidden_layers * (c.mla.kv_lora_rank + c.mla.qk_rope_head_dim);
  return c.num_hidden_layers * 2 * c.num_key_value_heads * c.head_dim;
}

int64_t full_kv_values_per_token(const ModelConfig& c) {
  if (c.uses_mla())
    return c.num_hidden_layers * c.num_attention_heads *
           (c.mla.qk_nope_head_dim + c.mla.qk_rope_head_dim + c.mla.v_head_dim);
  return kv_cache_values_per_token(c);
}

}  // namespace grpo
