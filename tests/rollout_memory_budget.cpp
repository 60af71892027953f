// Memory planning: cache bytes per position, sizes, and the engine under a KV-cache budget.
#include <doctest/doctest.h>

#include <map>

#include "policy_test_models.h"
#include "rollout/memory_budget.h"
#include "rollout/rollout_engine.h"

using namespace grpo;

TEST_CASE("cache bytes per position match what a KV cache allocates") {
  // Qwen2 tiny: 2 layers x (K and V) x 2 KV heads x head_dim 32/4 = 8, float32.
  CHECK(cache_bytes_per_token(test::tiny_config(test::kTinyQwen2), 4) == 2 * 2 * 2 * 8 * 4);
  // DeepSeek-V3 tiny (MLA): 3 layers x (kv_lora_rank 12 + rope dim 4), float64.
  CHECK(cache_bytes_per_token(test::tiny_config(test::kTinyDeepSeekV3), 8) == 3 * (12 + 4) * 8);
  for (const char* json : test::kAllTinyConfigs) {
    for (auto dtype : {torch::kFloat, torch::kDouble}) {
      CausalLM model = test::tiny_model(json, 1, dtype);
      KVCache cache = model->new_cache(/*batch=*/3, /*capacity=*/7);
      const int64_t element = dtype == torch::kFloat ? 4 : 8;
      CHECK(cache.bytes() == 3 * 7 * cache_bytes_per_token(model->config(), element));
    }
  }
}

TEST_CASE("a budget says how many rows of a length fit") {
  CacheBudget b{/*budget_bytes=*/10000, /*bytes_per_token=*/96};
  CHECK(b.positions() == 104);  // floor(10000 / 96)
  CHECK(b.max_rows(10) == 10);
  CHECK(b.max_rows(105) == 0);
  CHECK(b.max_length(8) == 13);
  CHECK(b.fits(8, 13));
  CHECK_FALSE(b.fits(8, 14));
}

TEST_CASE("memory sizes parse with decimal and binary units") {
  CHECK(parse_byte_size("2GiB") == 2147483648LL);
  CHECK(parse_byte_size("512 MiB") == 536870912LL);
  CHECK(parse_byte_size("1.5GB") == 1500000000LL);
  CHECK(parse_byte_size("64k") == 64000);
  CHECK(parse_byte_size("4096") == 4096);
  CHECK(parse_byte_size("3kib") == 3072);
  for (const char* bad : {"", "GiB", "-1GiB", "0", "2 XB", "1e40"})
    CHECK_THROWS_WITH_AS(parse_byte_size(bad), doctest::Contains("memory size"), std::invalid_argument);
  CHECK(format_bytes(100) == "100 B");
  CHECK(format_bytes(3 * 1024 * 1024 / 2) == "1.50 MiB");
}

TEST_CASE("under a memory budget the engine decodes fewer rows and returns the same samples") {
  CausalLM model = test::tiny_model(test::kTinyDeepSeekV3, 81, torch::kDouble);
  RolloutOptions o;
  o.sampling.temperature = 1.0;
  o.stop.max_new_tokens = 8;
  o.stop.stop_ids = {1, 2, 3};
  std::vector<PromptRequest> requests;
  for (int64_t i = 0; i < 6; ++i)
    requests.push_back({{static_cast<int32_t>(5 + i), 9, static_cast<int32_t>(20 + 3 * i)}, 4, static_cast<uint64_t>(i)});

  RolloutEngine unbounded(model, nullptr, o);
  std::vector<Completion> reference = unbounded.generate(requests);
  CHECK(unbounded.stats().peak_rows > 9);  // all 24 samples fit, less any that stop at their first token

  const int64_t per_position = cache_bytes_per_token(model->config(), 8);
  o.memory_budget_bytes = 9 * 11 * per_position;  // 9 rows of prompt 3 + 8 new tokens
  RolloutEngine bounded(model, nullptr, o);
  std::vector<Completion> got = bounded.generate(requests);
  CHECK(bounded.stats().peak_cache_bytes <= o.memory_budget_bytes);
  CHECK(bounded.stats().peak_rows <= 9);
  CHECK(bounded.stats().peak_rows >= 4);
  REQUIRE(got.size() == reference.size());
  for (size_t i = 0; i < got.size(); ++i) {
    CHECK(got[i].completion_ids == reference[i].completion_ids);
    REQUIRE(got[i].logprobs.size() == reference[i].logprobs.size());
    for (size_t t = 0; t < got[i].logprobs.size(); ++t) CHECK(got[i].logprobs[t] == doctest::Approx(reference[i].logprobs[t]).epsilon(1e-9));
  }
}

TEST_CASE("a request that cannot fit the budget is refused before anything is sampled") {
  CausalLM model = test::tiny_model(test::kTinyQwen2, 82);
  RolloutOptions o;
  o.stop.max_new_tokens = 20;
  const int64_t per_position = cache_bytes_per_token(model->config(), 4);
  o.memory_budget_bytes = 50 * per_position;  // 50 positions: two rows of 22, not three
  RolloutEngine engine(model, nullptr, o);
  CHECK(engine.generate({{{4, 5}, 2, 0}}).size() == 2);
  std::string message;
  try {
    engine.generate({{{4, 5}, 2, 0}, {{4, 5}, 3, 1}});
  } catch (const MemoryBudgetExceeded& e) {
    message = e.what();
  }
  CHECK(message.find("request 1 needs 3 rows x 22 positions") != std::string::npos);
  CHECK(message.find("at most 2 rows of 22 positions, or 3 rows of 16 positions") != std::string::npos);
}
