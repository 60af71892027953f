// Causality, padding invariance, and incremental decoding with the KV cache (GQA and MLA latent cache)
// against the full forward.
#include <doctest/doctest.h>

#include "policy_test_models.h"

using namespace grpo;
using torch::Tensor;

namespace {

using test::full_logits;

// Logits of `ids` fed through `cache`: the first `prefill` positions at once, then one token at a time
// (`mask` may be undefined: no padding).
Tensor cached_logits(CausalLM& model, const Tensor& ids, const Tensor& mask, int64_t prefill, KVCache& cache) {
  auto mask_upto = [&](int64_t n) { return mask.defined() ? mask.narrow(1, 0, n) : Tensor(); };
  ModelInputs first;
  first.input_ids = ids.narrow(1, 0, prefill);
  first.attention_mask = mask_upto(prefill);
  first.cache = &cache;
  std::vector<Tensor> steps = {model->forward(first)};
  for (int64_t t = prefill; t < ids.size(1); ++t) {
    ModelInputs step;
    step.input_ids = ids.narrow(1, t, 1);
    step.attention_mask = mask_upto(t + 1);
    step.cache = &cache;
    steps.push_back(model->forward(step));
  }
  return torch::cat(steps, 1);
}

}  // namespace

TEST_CASE("causality: tokens after position t do not change logits up to t") {
  for (const char* json : test::kAllTinyConfigs) {
    CausalLM model = test::tiny_model(json, 1);
    CAPTURE(model->config().model_type);
    Tensor a = torch::randint(0, 61, {2, 12}, torch::kLong);
    Tensor b = a.clone();
    b.narrow(1, 7, 5).random_(0, 61);
    Tensor la = full_logits(model, a), lb = full_logits(model, b);
    CHECK(test::max_relative_error(la.narrow(1, 0, 7), lb.narrow(1, 0, 7)) < 1e-6);
    CHECK(test::max_relative_error(la.narrow(1, 7, 5), lb.narrow(1, 7, 5)) > 1e-3);  // and the rest does change
  }
}

TEST_CASE("left padding leaves the real tokens' logits unchanged") {
  for (const char* json : test::kAllTinyConfigs) {
    CausalLM model = test::tiny_model(json, 2);
    CAPTURE(model->config().model_type);
    Tensor row = torch::randint(0, 61, {1, 6}, torch::kLong);
    Tensor alone = full_logits(model, row);
    // Batch it with a longer row: 3 pad positions (token 0, masked) on its left.
    Tensor padded = torch::cat({torch::zeros({1, 3}, torch::kLong), row}, 1);
    Tensor other = torch::randint(0, 61, {1, 9}, torch::kLong);
    Tensor mask = torch::ones({2, 9}, torch::kLong);
    mask.index_put_({0, torch::indexing::Slice(0, 3)}, 0);
    Tensor batched = full_logits(model, torch::cat({padded, other}), mask);
    CHECK(test::max_relative_error(batched[0].narrow(0, 3, 6), alone[0]) < 1e-5);
    CHECK(test::max_relative_error(batched[1], full_logits(model, other)[0]) < 1e-5);
    CHECK(torch::isfinite(batched).all().item<bool>());
  }
}

TEST_CASE("incremental decoding with the KV cache equals the full forward") {
  for (const char* json : test::kAllTinyConfigs) {
    CausalLM model = test::tiny_model(json, 3);
    CAPTURE(model->config().model_type);
    Tensor ids = torch::randint(0, 61, {3, 10}, torch::kLong);
    Tensor mask = torch::ones({3, 10}, torch::kLong);
    mask.index_put_({1, torch::indexing::Slice(0, 2)}, 0);  // row 1 is left-padded by 2
    Tensor expected = full_logits(model, ids, mask);

    // Prefill 4 positions into a cache smaller than needed (it must grow), then one token at a time.
    KVCache cache = model->new_cache(3, 5);
    Tensor got = cached_logits(model, ids, mask, 4, cache);
    CHECK(cache.length() == 10);
    // Compare real positions only (padding rows attend nowhere).
    Tensor real = mask.to(torch::kBool);
    CHECK(test::max_relative_error(got.index({real}), expected.index({real})) < 1e-5);
  }
}

TEST_CASE("MLA decodes from the latent cache alone, matching the naive path") {
  CausalLM model = test::tiny_model(test::kTinyDeepSeekV3, 4, torch::kDouble);
  const ModelConfig& c = model->config();
  KVCache cache = model->new_cache(2, 16);
  CHECK(cache.is_latent());
  // The cache holds kv_lora_rank + rope dims per layer and position, nothing per head.
  CHECK(cache.bytes_per_token() == c.num_hidden_layers * (c.mla.kv_lora_rank + c.mla.qk_rope_head_dim) * 8);

  Tensor ids = torch::randint(0, 61, {2, 9}, torch::kLong);
  Tensor expected = full_logits(model, ids);  // naive path throughout
  ModelInputs prefill;
  prefill.input_ids = ids.narrow(1, 0, 1);
  prefill.cache = &cache;
  std::vector<Tensor> steps = {model->forward(prefill)};
  for (int64_t t = 1; t < 9; ++t) {  // every later step takes the absorbed path
    ModelInputs step;
    step.input_ids = ids.narrow(1, t, 1);
    step.cache = &cache;
    steps.push_back(model->forward(step));
  }
  CHECK(test::max_relative_error(torch::cat(steps, 1), expected) < 1e-10);
}

TEST_CASE("select_rows shares one prefilled prompt among several continuations") {
  for (const char* json : test::kAllTinyConfigs) {
    CausalLM model = test::tiny_model(json, 5);
    CAPTURE(model->config().model_type);
    Tensor prompt = torch::randint(0, 61, {1, 5}, torch::kLong);
    KVCache cache = model->new_cache(1, 8);
    ModelInputs prefill;
    prefill.input_ids = prompt;
    prefill.cache = &cache;
    model->forward(prefill);
    cache.select_rows(torch::tensor({0, 0, 0}, torch::kLong));  // three samples of the same prompt
    CHECK(cache.batch() == 3);
    Tensor next = torch::tensor({{7}, {8}, {9}}, torch::kLong);
    ModelInputs step;
    step.input_ids = next;
    step.cache = &cache;
    Tensor got = model->forward(step).squeeze(1);
    Tensor expected = full_logits(model, torch::cat({prompt.expand({3, 5}), next}, 1)).select(1, 5);
    CHECK(test::max_relative_error(got, expected) < 1e-5);

    cache.select_rows(torch::tensor({2}, torch::kLong));  // drop finished rows
    CHECK(cache.batch() == 1);
    ModelInputs step2;
    step2.input_ids = torch::tensor({{4}}, torch::kLong);
    step2.cache = &cache;
    Tensor got2 = model->forward(step2);
    Tensor seq = torch::tensor({{0, 0, 0, 0, 0, 9, 4}}, torch::kLong);
    seq.narrow(1, 0, 5).copy_(prompt);
    CHECK(test::max_relative_error(got2[0][0], full_logits(model, seq)[0][6]) < 1e-5);
  }
}
