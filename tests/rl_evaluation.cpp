// grpo.eval's core: unbiased pass@k against the binomial definition, and evaluate() against the same
// samples scored independently in the test.
#include <doctest/doctest.h>

#include <cmath>

#include "policy/tokenizer/tokenizer.h"
#include "policy_test_models.h"
#include "rl/evaluation.h"

using namespace grpo;
using nlohmann::json;

namespace {

// C(n, k) exactly, for the small n of these tests.
double binomial(int64_t n, int64_t k) {
  if (k < 0 || k > n) return 0;
  double c = 1;
  for (int64_t i = 1; i <= k; ++i) c = c * static_cast<double>(n - k + i) / static_cast<double>(i);
  return c;
}

}  // namespace

TEST_CASE("pass@k is 1 − C(n−c, k)/C(n, k) (Chen et al. 2021)") {
  for (int64_t n : {1, 4, 8, 16})
    for (int64_t c = 0; c <= n; ++c)
      for (int64_t k = 1; k <= n; ++k) CHECK(pass_at_k(n, c, k) == doctest::Approx(1.0 - binomial(n - c, k) / binomial(n, k)).epsilon(1e-12));
  CHECK(pass_at_k(8, 2, 1) == doctest::Approx(0.25));  // pass@1 is the share of correct samples
  CHECK_THROWS_WITH_AS(pass_at_k(4, 1, 8), doctest::Contains("pass@8 needs at least 8 samples per prompt, have 4"),
                       std::invalid_argument);
}

TEST_CASE("evaluate: pass@k, per-rule means and failure counts from the samples it draws") {
  Tokenizer tok = Tokenizer::make_char_level("abcdefgh", {"<pad>", "<eos>"});
  ModelConfig c = test::tiny_config(test::kTinyQwen2);
  c.vocab_size = tok.vocab_size();
  torch::manual_seed(11);
  CausalLM model(c);
  std::vector<PromptExample> prompts;
  int id = 0;
  for (const char* p : {"ab", "cd", "ef", "gh"}) prompts.push_back({p, tok.encode(p), json{{"id", id++}}});
  EvalConfig config;
  config.samples_per_prompt = 4;
  config.pass_k = {1, 2, 4};
  config.stop.max_new_tokens = 4;
  config.stop.stop_ids = {tok.eos_id()};
  config.reward_threads = 1;
  // "accuracy": the completion contains an 'a'; "picky" fails on prompt id 3.
  rewards::RuleSet rules = rewards::RuleSet::from_source(R"(return {
      { name = "accuracy", rule = function(s) return s.completion:find("a", 1, true) and 1 or 0 end },
      { name = "picky", weight = 0, rule = function(s) if s.id == 3 then error("no id 3") end return 1 end } })",
                                                         "rules.lua");
  const std::map<std::string, double> m = evaluate(model, tok, rules, prompts, config);

  // The same samples (prompt i is seeded with seed + i), scored here by reading the text.
  const std::vector<Completion> completions = sample_prompts(model, tok, prompts, config);
  std::vector<int64_t> correct(prompts.size(), 0);
  double accuracy = 0;
  for (const Completion& done : completions) {
    const bool has_a = done.text.find('a') != std::string::npos;
    correct[done.request_index] += has_a;
    accuracy += has_a / 16.0;
  }
  for (int64_t k : {1, 2, 4}) {
    double expected = 0;
    for (int64_t ci : correct) expected += (1.0 - binomial(4 - ci, k) / binomial(4, k)) / 4.0;
    CHECK(m.at("pass@" + std::to_string(k)) == doctest::Approx(expected).epsilon(1e-12));
  }
  CHECK(m.at("rewards/accuracy") == doctest::Approx(accuracy));
  CHECK(m.at("reward") == doctest::Approx(accuracy));  // picky's weight is 0
  CHECK(m.at("rewards/picky") == doctest::Approx(0.75));
  CHECK(m.at("rewards/picky/failures") == 4);
  CHECK(m.at("rewards/accuracy/failures") == 0);
  CHECK(m.count("pass@8") == 0);  // k > n is left out
}
