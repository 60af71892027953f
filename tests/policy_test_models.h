#pragma once
// Tiny configurations of each family that exercise every code path (q-LoRA on/off, sigmoid routing
// with correction bias and expert groups, softmax routing, YaRN, Llama-3 rope, GQA, qkv bias, tied and
// untied heads) while running in milliseconds.
#include <torch/torch.h>

#include <string>

#include "policy/causal_lm.h"
#include "policy/model_config.h"

namespace grpo::test {

inline const char* kTinyDeepSeekV3 = R"({
  "model_type": "deepseek_v3", "vocab_size": 61, "hidden_size": 32, "intermediate_size": 48,
  "num_hidden_layers": 3, "num_attention_heads": 4, "num_key_value_heads": 4,
  "q_lora_rank": 16, "kv_lora_rank": 12, "qk_nope_head_dim": 8, "qk_rope_head_dim": 4, "v_head_dim": 6,
  "n_routed_experts": 8, "n_shared_experts": 1, "num_experts_per_tok": 2, "moe_intermediate_size": 12,
  "n_group": 4, "topk_group": 2, "topk_method": "noaux_tc", "scoring_func": "sigmoid",
  "norm_topk_prob": true, "routed_scaling_factor": 2.5, "first_k_dense_replace": 1,
  "max_position_embeddings": 64, "rms_norm_eps": 1e-6, "tie_word_embeddings": false,
  "rope_theta": 10000.0,
  "rope_scaling": {"type": "yarn", "factor": 4.0, "original_max_position_embeddings": 16,
                   "beta_fast": 32, "beta_slow": 1, "mscale": 1.0, "mscale_all_dim": 1.0},
  "bos_token_id": 0, "eos_token_id": 1, "some_unknown_key": [1, 2, 3]
})";

// V2-Lite style: no q-LoRA, softmax scores, no correction bias, greedy top-k, unnormalised weights.
inline const char* kTinyDeepSeekV2 = R"({
  "model_type": "deepseek_v2", "vocab_size": 61, "hidden_size": 32, "intermediate_size": 48,
  "num_hidden_layers": 2, "num_attention_heads": 2, "q_lora_rank": null, "kv_lora_rank": 16,
  "qk_nope_head_dim": 8, "qk_rope_head_dim": 8, "v_head_dim": 8,
  "n_routed_experts": 6, "n_shared_experts": 2, "num_experts_per_tok": 3, "moe_intermediate_size": 8,
  "topk_method": "greedy", "scoring_func": "softmax", "norm_topk_prob": false,
  "routed_scaling_factor": 1.0, "first_k_dense_replace": 1, "max_position_embeddings": 64,
  "rope_theta": 10000.0, "tie_word_embeddings": false
})";

inline const char* kTinyQwen2 = R"({
  "model_type": "qwen2", "vocab_size": 61, "hidden_size": 32, "intermediate_size": 48,
  "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
  "max_position_embeddings": 64, "rope_theta": 1000000.0, "rms_norm_eps": 1e-6,
  "tie_word_embeddings": true
})";

inline const char* kTinyLlama = R"({
  "model_type": "llama", "vocab_size": 61, "hidden_size": 32, "intermediate_size": 48,
  "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 1,
  "max_position_embeddings": 64, "rope_theta": 500000.0, "rms_norm_eps": 1e-5,
  "tie_word_embeddings": false,
  "rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                   "high_freq_factor": 4.0, "original_max_position_embeddings": 8}
})";

inline const char* const kAllTinyConfigs[] = {kTinyDeepSeekV3, kTinyDeepSeekV2, kTinyQwen2, kTinyLlama};

inline ModelConfig tiny_config(const char* json) { return parse_model_config(json, "<test config>"); }

// A model with seeded random weights; biases and router correction biases get random values too, so
// that a bug which ignores them changes the outputs.
inline CausalLM tiny_model(const char* json, uint64_t seed = 0, torch::ScalarType dtype = torch::kFloat) {
  torch::manual_seed(seed);
  CausalLM model(tiny_config(json));
  torch::NoGradGuard no_grad;
  for (auto& item : model->named_parameters()) {
    const std::string& name = item.key();
    if (name.find(".bias") != std::string::npos || name.find("norm") != std::string::npos)
      item.value().copy_(torch::randn_like(item.value()) * 0.1 + (name.find("norm") != std::string::npos ? 1.0 : 0.0));
    else
      item.value().normal_(0.0, 0.3);  // larger than the default init: sharper attention, more varied routing
  }
  for (auto& item : model->named_buffers()) item.value().copy_(torch::randn_like(item.value()) * 0.05);
  model->to(dtype);
  model->eval();
  return model;
}

inline double max_relative_error(const torch::Tensor& a, const torch::Tensor& b) {
  torch::Tensor diff = (a.to(torch::kDouble) - b.to(torch::kDouble)).abs().max();
  torch::Tensor scale = b.to(torch::kDouble).abs().max().clamp_min(1e-12);
  return (diff / scale).item<double>();
}

// The tiny DeepSeek-V3 config with another routing: method "noaux_tc", "greedy" or "group_limited_greedy",
// `groups` expert groups of which `topk_groups` are kept, `k` experts per token.
inline ModelConfig router_config(const std::string& method, int64_t groups, int64_t topk_groups, int64_t k) {
  ModelConfig c = tiny_config(kTinyDeepSeekV3);
  c.moe.topk_method = method == "noaux_tc" ? MoeTopkMethod::NoauxTc
                      : method == "greedy" ? MoeTopkMethod::Greedy
                                           : MoeTopkMethod::GroupLimitedGreedy;
  c.moe.n_group = groups;
  c.moe.topk_group = topk_groups;
  c.moe.num_experts_per_tok = k;
  return c;
}

// The logits of a full forward over `ids` [B, T] (`mask` [B, T], undefined: no padding): the general
// path that decoding tests compare the KV cache and the decode fast paths against.
inline torch::Tensor full_logits(CausalLM& model, const torch::Tensor& ids, const torch::Tensor& mask = {}) {
  ModelInputs in;
  in.input_ids = ids;
  in.attention_mask = mask;
  return model->forward(in);
}

}  // namespace grpo::test
