// Parameter counts and cache sizes from a config alone, against published figures and against the
// tensors an allocated model actually has.
#include <doctest/doctest.h>

#include "policy/model_size.h"
#include "policy_test_models.h"

using namespace grpo;

namespace {

// DeepSeek-V2-Lite as published (V2 paper, config_16B.json).
const char* kDeepSeekV2Lite = R"({
  "model_type": "deepseek_v2", "vocab_size": 102400, "hidden_size": 2048, "intermediate_size": 10944,
  "num_hidden_layers": 27, "num_attention_heads": 16, "q_lora_rank": null, "kv_lora_rank": 512,
  "qk_nope_head_dim": 128, "qk_rope_head_dim": 64, "v_head_dim": 128,
  "n_routed_experts": 64, "n_shared_experts": 2, "num_experts_per_tok": 6, "moe_intermediate_size": 1408,
  "first_k_dense_replace": 1, "topk_method": "greedy", "scoring_func": "softmax", "norm_topk_prob": false,
  "tie_word_embeddings": false
})";

}  // namespace

TEST_CASE("DeepSeek-V2-Lite: 15.7B total, ~2.45B activated per token") {
  ParameterCounts p = count_parameters(parse_model_config(kDeepSeekV2Lite, "v2-lite"));
  // Hand count: attention per layer 16·192·2048 + 576·2048 + 512 + 16·256·512 + 2048·2048 = 13,763,072;
  // + 2 norms; dense FFN 3·2048·10944; MoE layer: router 64·2048 + 64 experts of 3·2048·1408 + shared 3·2048·2816;
  // embedding and head 102400·2048 each; final norm 2048.
  CHECK(p.total == 15'706'484'224);
  CHECK(p.total / 1e9 == doctest::Approx(15.7).epsilon(0.005));
  // Activated: 6 of 64 routed experts, the head, no input embedding table.
  CHECK(p.activated_per_token == 2'451'435'008);
  CHECK(p.embedding == 102400 * 2048);
}

TEST_CASE("MLA caches kv_lora_rank + rope dims per layer, far less than full K/V") {
  ModelConfig c = parse_model_config(kDeepSeekV2Lite, "v2-lite");
  CHECK(kv_cache_values_per_token(c) == 27 * 576);
  CHECK(full_kv_values_per_token(c) == 27 * 16 * (192 + 128));
  ModelConfig q = test::tiny_config(test::kTinyQwen2);
  CHECK(kv_cache_values_per_token(q) == 2 * 2 * 2 * 8);  // layers · (K,V) · kv heads · head dim
}

TEST_CASE("counts from the config equal the numel of the allocated model's parameters") {
  for (const char* json : test::kAllTinyConfigs) {
    CausalLM model(test::tiny_config(json));
    int64_t numel = 0;
    for (const auto& p : model->parameters()) numel += p.numel();
    CAPTURE(model->config().model_type);
    CHECK(count_parameters(model->config()).total == numel);
  }
}

TEST_CASE("a KVCache allocates exactly the per-token size the config predicts") {
  for (const char* json : test::kAllTinyConfigs) {
    CausalLM model(test::tiny_config(json));
    KVCache cache = model->new_cache(/*batch=*/3, /*capacity=*/10);
    CHECK(cache.bytes_per_token() == kv_cache_values_per_token(model->config()) * 4);
  }
}
