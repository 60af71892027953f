// grpo.sample's core: n completions per prompt as records that keep the dataset's fields, scored by
// real Lua rules.
#include <doctest/doctest.h>

#include "policy/tokenizer/tokenizer.h"
#include "policy_test_models.h"
#include "rl/sample_dataset.h"

using namespace grpo;
using nlohmann::json;

namespace {

// Two rules whose values the test recomputes from the text: the completion's length in characters, and
// 1 when it contains an 'a'.
const char* kRules = R"(
return { { name = "chars", weight = 0.5, rule = function(s) return #s.completion end },
         { name = "has_a", weight = 1.0, rule = function(s) return s.completion:find("a", 1, true) and 1 or 0 end } }
)";

struct SamplingFixture {
  Tokenizer tok = Tokenizer::make_char_level("abcdefgh", {"<pad>", "<eos>"});
  CausalLM model{nullptr};
  std::vector<PromptExample> prompts;
  SampleConfig config;

  SamplingFixture() {
    ModelConfig c = test::tiny_config(test::kTinyQwen2);
    c.vocab_size = tok.vocab_size();
    torch::manual_seed(5);
    model = CausalLM(c);
    int i = 0;
    for (const char* p : {"ab", "cd", "ef"}) prompts.push_back({p, tok.encode(p), json{{"id", i++}, {"prompt", "raw"}}});
    config.samples_per_prompt = 3;
    config.stop.max_new_tokens = 5;
    config.stop.stop_ids = {tok.eos_id()};
    config.reward_threads = 1;
  }
};

}  // namespace

TEST_CASE("sample_dataset: records in prompt and sample order, with the record's fields and the rules' scores") {
  SamplingFixture f;
  rewards::RuleSet rules = rewards::RuleSet::from_source(kRules, "rules.lua");
  std::vector<json> samples = sample_dataset(f.model, f.tok, f.prompts, f.config, &rules);
  REQUIRE(samples.size() == 9);
  for (size_t i = 0; i < samples.size(); ++i) {
    const json& s = samples[i];
    CHECK(s["prompt_index"] == i / 3);
    CHECK(s["sample_index"] == i % 3);
    CHECK(s["id"] == i / 3);                              // a record field
    CHECK(s["prompt"] == f.prompts[i / 3].prompt);        // the stage's prompt wins over the record's
    const std::string text = s["completion"].get<std::string>();
    const size_t tokens = s["completion_tokens"].get<size_t>();
    CHECK(tokens >= f.tok.encode(text).size());  // the text may leave out the EOS that stopped it
    CHECK(tokens <= 5);
    CHECK((s["finish_reason"] == "stop" || tokens == 5));
    const double chars = static_cast<double>(text.size()), has_a = text.find('a') != std::string::npos ? 1.0 : 0.0;
    CHECK(s["rewards"]["chars"].get<double>() == chars);
    CHECK(s["rewards"]["has_a"].get<double>() == has_a);
    CHECK(s["reward"].get<double>() == doctest::Approx(0.5 * chars + has_a));
    CHECK_FALSE(s.contains("reward_failures"));
  }
  std::map<std::string, double> m = sample_means(samples);
  double reward = 0, length = 0;
  for (const json& s : samples) reward += s["reward"].get<double>() / 9, length += s["completion_tokens"].get<double>() / 9;
  CHECK(m["reward"] == doctest::Approx(reward));
  CHECK(m["completion_length"] == doctest::Approx(length));
  CHECK(m.count("rewards/chars") == 1);
  CHECK(m.at("rewards/chars/failures") == 0);
}

TEST_CASE("sample_dataset: prompt i uses seed + i, so a later slice sampled with seed + offset matches") {
  SamplingFixture f;
  std::vector<json> all = sample_dataset(f.model, f.tok, f.prompts, f.config, nullptr);
  CHECK_FALSE(all[0].contains("reward"));
  SampleConfig shifted = f.config;
  shifted.seed = f.config.seed + 2;
  std::vector<json> last = sample_dataset(f.model, f.tok, {f.prompts[2]}, shifted, nullptr);
  REQUIRE(last.size() == 3);
  for (size_t s = 0; s < 3; ++s) CHECK(last[s]["completion"] == all[6 + s]["completion"]);
  // A different seed gives different samples somewhere.
  SampleConfig other = f.config;
  other.seed = 99;
  std::vector<json> different = sample_dataset(f.model, f.tok, f.prompts, other, nullptr);
  bool any = false;
  for (size_t i = 0; i < all.size(); ++i) any = any || different[i]["completion"] != all[i]["completion"];
  CHECK(any);
}

TEST_CASE("sample_dataset: a rule that fails scores 0 and says why, the rest of the samples go on") {
  SamplingFixture f;
  rewards::RuleSet rules = rewards::RuleSet::from_source(
      "return { { name = 'picky', rule = function(s) if s.id == 1 then error('no id 1') end return 1 end } }", "picky.lua");
  std::vector<json> samples = sample_dataset(f.model, f.tok, f.prompts, f.config, &rules);
  for (const json& s : samples) {
    if (s["id"] == 1) {
      CHECK(s["reward"].get<double>() == 0.0);
      CHECK(s["reward_failures"]["picky"].get<std::string>().find("no id 1") != std::string::npos);
    } else {
      CHECK(s["reward"].get<double>() == 1.0);
    }
  }
  // One prompt of three, with config.samples_per_prompt samples each, failed every time.
  const std::map<std::string, double> m = sample_means(samples);
  CHECK(m.at("rewards/picky/failures") == static_cast<double>(samples.size() / 3));
  CHECK(m.at("rewards/picky") == doctest::Approx(2.0 / 3.0));
}
