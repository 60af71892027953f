#pragma once
// ModelConfig: the architecture of a policy, read from and written to a Hugging Face config.json.
// One struct covers the three families grpo trains (DeepSeek-V2/V3, Qwen2, Llama): the families differ
// in a few switches (attention kind, MoE, rope pair layout, q/k/v bias), not in class hierarchies.
// No LibTorch here: configs are read by tools that never build a model (inspect, parameter counts).

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace grpo {

// A config.json that is missing a required key or has a value of the wrong kind.
class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

enum class ModelFamily { DeepSeek, Qwen2, Llama };

// How RoPE pairs the dimensions it rotates. DeepSeek rotates adjacent pairs (x[2i], x[2i+1]);
// Llama and Qwen rotate (x[i], x[i + d/2]) ("rotate_half", NeoX). Mixing them up silently breaks a
// loaded checkpoint, so the layout is explicit.
enum class RopeLayout { Interleaved, RotateHalf };

enum class RopeScaling { None, Linear, Yarn, Llama3 };

struct RopeConfig {
  double theta = 10000.0;
  RopeLayout layout = RopeLayout::RotateHalf;
  RopeScaling scaling = RopeScaling::None;
  double factor = 1.0;
  int64_t original_max_position_embeddings = 0;
  // YaRN (DeepSeek): frequency ramp bounds and the attention temperature ("mscale") convention.
  double beta_fast = 32.0;
  double beta_slow = 1.0;
  double mscale = 0.0;          // 0 = absent in the file
  double mscale_all_dim = 0.0;  // 0 = absent in the file
  // Llama-3 frequency smoothing.
  double low_freq_factor = 1.0;
  double high_freq_factor = 4.0;
};

enum class MoeScoring { Softmax, Sigmoid };

// How the top-k experts are chosen when experts are split into groups (DeepSeek's device-limited
// routing): "greedy" ignores groups; "group_limited_greedy" (V2) ranks groups by their best expert;
// "noaux_tc" (V3) ranks groups by the sum of their two best biased scores.
enum class MoeTopkMethod { Greedy, GroupLimitedGreedy, NoauxTc };

struct MoeConfig {
  int64_t n_routed_experts = 0;  // 0 = no MoE layers at all
  int64_t n_shared_experts = 0;
  int64_t num_experts_per_tok = 0;
  int64_t moe_intermediate_size = 0;
  int64_t n_group = 1;
  int64_t topk_group = 1;
  MoeTopkMethod topk_method = MoeTopkMethod::Greedy;
  MoeScoring scoring = MoeScoring::Softmax;
  bool norm_topk_prob = false;
  double routed_scaling_factor = 1.0;
  int64_t first_k_dense_replace = 0;
  int64_t moe_layer_freq = 1;
  // Sequence-wise balance loss weight (V3 eq. 17-20); 0 disables it.
  double aux_loss_alpha = 0.0;
};

struct MlaConfig {
  int64_t q_lora_rank = 0;  // 0 = plain q_proj (V2-Lite), >0 = q_a_proj / q_a_layernorm / q_b_proj
  int64_t kv_lora_rank = 0;
  int64_t qk_nope_head_dim = 0;
  int64_t qk_rope_head_dim = 0;
  int64_t v_head_dim = 0;
};

struct ModelConfig {
  ModelFamily family = ModelFamily::Llama;
  std::string model_type;  // as written in config.json: deepseek_v3, deepseek_v2, qwen2, llama
  int64_t vocab_size = 0;
  int64_t hidden_size = 0;
  int64_t intermediate_size = 0;  // dense MLP width
  int64_t num_hidden_layers = 0;
  int64_t num_attention_heads = 0;
  int64_t num_key_value_heads = 0;  // GQA; equals num_attention_heads for MLA models
  int64_t head_dim = 0;             // GQA head width (hidden_size / heads unless given)
  int64_t max_position_embeddings = 0;
  double rms_norm_eps = 1e-6;
  double initializer_range = 0.02;
  bool tie_word_embeddings = false;
  bool attention_bias = false;  // q/k/v projections carry a bias (Qwen2)
  std::vector<int64_t> bos_token_ids;
  std::vector<int64_t> eos_token_ids;
  RopeConfig rope;
  MlaConfig mla;
  MoeConfig moe;

  bool uses_mla() const { return family == ModelFamily::DeepSeek; }
  bool has_moe() const { return moe.n_routed_experts > 0; }
  // Whether decoder layer `layer` uses the DeepSeekMoE FFN (else the dense SwiGLU MLP).
  bool is_moe_layer(int64_t layer) const;
  // Query/key width of one attention head (MLA: nope + rope parts).
  int64_t qk_head_dim() const;
  // Width of the rotated part of each head.
  int64_t rope_dim() const;
  // Softmax scale for attention scores, including DeepSeek's YaRN m² temperature (the DeepSeek and
  // vLLM convention, which transformers' DeepseekV3 port follows too).
  double attention_scale() const;
};

// Parses config.json text. `source` names the file in error messages. Throws ConfigError naming the
// key and the file when a required key is missing or has the wrong type, or model_type is unsupported.
// Unknown keys are ignored, as transformers does.
ModelConfig parse_model_config(const std::string& json_text, const std::string& source);
ModelConfig load_model_config(const std::string& path);

// Serialises with transformers' key names for the family, so the file loads in transformers.
// config.json text; torch_dtype names the dtype the weights are saved in ("float32", "bfloat16", "float16").
std::string model_config_to_json(const ModelConfig& config, const std::string& torch_dtype = "float32");
void save_model_config(const ModelConfig& config, const std::string& path);

// Checks cross-key invariants (divisibility, ranges). Throws ConfigError naming the key and `source`.
void validate_model_config(const ModelConfig& config, const std::string& source);

const char* to_string(ModelFamily family);

// YaRN's attention temperature for a context extended `scale`-fold: 0.1·mscale·ln(scale) + 1 (1 when
// scale <= 1). Used for the softmax scale (m²) and for the factor on cos/sin.
double yarn_get_mscale(double scale, double mscale);

}  // namespace grpo
