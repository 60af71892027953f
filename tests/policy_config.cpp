// ModelConfig: parsing config.json of each family, errors that name the key and the file, round trip.
#include <doctest/doctest.h>

#include <fstream>
#include <string>

#include "policy/model_config.h"
#include "policy_test_models.h"

using namespace grpo;

namespace {

std::string error_of(const std::string& json, const std::string& source = "dir/config.json") {
  try {
    parse_model_config(json, source);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("deepseek_v3 config: MLA, MoE and YaRN keys are read") {
  ModelConfig c = test::tiny_config(test::kTinyDeepSeekV3);
  CHECK(c.family == ModelFamily::DeepSeek);
  CHECK(c.uses_mla());
  CHECK(c.mla.q_lora_rank == 16);
  CHECK(c.mla.kv_lora_rank == 12);
  CHECK(c.qk_head_dim() == 12);
  CHECK(c.rope_dim() == 4);
  CHECK(c.rope.layout == RopeLayout::Interleaved);
  CHECK(c.rope.scaling == RopeScaling::Yarn);
  CHECK(c.rope.original_max_position_embeddings == 16);
  CHECK(c.moe.scoring == MoeScoring::Sigmoid);
  CHECK(c.moe.topk_method == MoeTopkMethod::NoauxTc);
  CHECK(c.moe.n_group == 4);
  CHECK(c.moe.routed_scaling_factor == doctest::Approx(2.5));
  CHECK_FALSE(c.is_moe_layer(0));  // first_k_dense_replace = 1
  CHECK(c.is_moe_layer(1));
  CHECK(c.eos_token_ids == std::vector<int64_t>{1});
}

TEST_CASE("deepseek_v2 config: null q_lora_rank means a plain q_proj; V2 defaults") {
  ModelConfig c = test::tiny_config(test::kTinyDeepSeekV2);
  CHECK(c.mla.q_lora_rank == 0);
  CHECK(c.moe.scoring == MoeScoring::Softmax);
  CHECK_FALSE(c.moe.norm_topk_prob);
  CHECK(c.rope.scaling == RopeScaling::None);
}

TEST_CASE("qwen2 and llama configs: GQA, qkv bias, rope layout, scaling") {
  ModelConfig q = test::tiny_config(test::kTinyQwen2);
  CHECK(q.family == ModelFamily::Qwen2);
  CHECK(q.attention_bias);  // Qwen2 always has q/k/v biases
  CHECK(q.tie_word_embeddings);
  CHECK(q.head_dim == 8);
  CHECK(q.num_key_value_heads == 2);
  CHECK(q.rope.layout == RopeLayout::RotateHalf);

  ModelConfig l = test::tiny_config(test::kTinyLlama);
  CHECK_FALSE(l.attention_bias);
  CHECK(l.rope.scaling == RopeScaling::Llama3);
  CHECK(l.rope.high_freq_factor == doctest::Approx(4.0));
  CHECK(l.rms_norm_eps == doctest::Approx(1e-5));
}

TEST_CASE("a missing required key is named together with the file") {
  std::string msg = error_of(R"({"model_type": "llama", "vocab_size": 10, "hidden_size": 8,
      "num_hidden_layers": 1, "num_attention_heads": 2})");
  CHECK(msg.find("dir/config.json") != std::string::npos);
  CHECK(msg.find("\"intermediate_size\"") != std::string::npos);
}

TEST_CASE("a value of the wrong type is named with what was expected") {
  std::string msg = error_of(R"({"model_type": "qwen2", "vocab_size": "many", "hidden_size": 8,
      "intermediate_size": 8, "num_hidden_layers": 1, "num_attention_heads": 2})");
  CHECK(msg.find("\"vocab_size\"") != std::string::npos);
  CHECK(msg.find("an integer") != std::string::npos);
  CHECK(msg.find("\"many\"") != std::string::npos);
}

TEST_CASE("unsupported model types, rope types and invalid shapes are rejected") {
  CHECK(error_of(R"({"model_type": "gpt2"})").find("gpt2") != std::string::npos);
  std::string bad_heads = error_of(R"({"model_type": "llama", "vocab_size": 10, "hidden_size": 12,
      "intermediate_size": 8, "num_hidden_layers": 1, "num_attention_heads": 3, "num_key_value_heads": 2})");
  CHECK(bad_heads.find("num_key_value_heads") != std::string::npos);
  std::string bad_rope = error_of(R"({"model_type": "llama", "vocab_size": 10, "hidden_size": 8,
      "intermediate_size": 8, "num_hidden_layers": 1, "num_attention_heads": 2,
      "rope_scaling": {"type": "longrope", "factor": 2}})");
  CHECK(bad_rope.find("longrope") != std::string::npos);
  CHECK(error_of("{not json").find("not valid JSON") != std::string::npos);
}

TEST_CASE("group-limited routing must be able to reach top_k experts") {
  std::string cfg = test::kTinyDeepSeekV3;
  cfg.replace(cfg.find("\"num_experts_per_tok\": 2"), 24, "\"num_experts_per_tok\": 5");
  // 2 groups of 2 experts are reachable: 4 < 5.
  CHECK(error_of(cfg).find("num_experts_per_tok") != std::string::npos);
}

TEST_CASE("config.json round trip preserves every field the model uses") {
  for (const char* json : test::kAllTinyConfigs) {
    ModelConfig a = test::tiny_config(json);
    ModelConfig b = parse_model_config(model_config_to_json(a), "<round trip>");
    CAPTURE(a.model_type);
    CHECK(b.family == a.family);
    CHECK(b.vocab_size == a.vocab_size);
    CHECK(b.num_key_value_heads == a.num_key_value_heads);
    CHECK(b.head_dim == a.head_dim);
    CHECK(b.attention_bias == a.attention_bias);
    CHECK(b.tie_word_embeddings == a.tie_word_embeddings);
    CHECK(b.rope.scaling == a.rope.scaling);
    CHECK(b.rope.factor == a.rope.factor);
    CHECK(b.rope.layout == a.rope.layout);
    CHECK(b.rope.mscale_all_dim == a.rope.mscale_all_dim);
    CHECK(b.rope.low_freq_factor == a.rope.low_freq_factor);
    CHECK(b.mla.q_lora_rank == a.mla.q_lora_rank);
    CHECK(b.mla.kv_lora_rank == a.mla.kv_lora_rank);
    CHECK(b.moe.n_routed_experts == a.moe.n_routed_experts);
    CHECK(b.moe.topk_method == a.moe.topk_method);
    CHECK(b.moe.scoring == a.moe.scoring);
    CHECK(b.moe.norm_topk_prob == a.moe.norm_topk_prob);
    CHECK(b.moe.first_k_dense_replace == a.moe.first_k_dense_replace);
    CHECK(b.attention_scale() == doctest::Approx(a.attention_scale()));
  }
}
