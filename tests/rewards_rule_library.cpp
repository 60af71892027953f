// The shipped rule library (rewards/lua/), run in real sandboxes through require(), against values
// worked out by hand from each rule's documented formula.
#include <doctest/doctest.h>

#include <string>

#include "rewards/rule_set.h"

using namespace grpo::rewards;

namespace {

// Scores `sample` with the single rule `rule_expression` (Lua, e.g. "require('gsm8k')()").
RuleScore score_with(const std::string& rule_expression, const Sample& sample) {
  RuleSet rules = RuleSet::from_source("return " + rule_expression, "library_rule.lua");
  RuleScorer scorer(rules, SandboxLimits{});
  return scorer.score(sample).rules.at(0);
}

double value_of(const std::string& rule_expression, const Sample& sample) {
  RuleScore score = score_with(rule_expression, sample);
  INFO(score.message);
  REQUIRE_FALSE(score.failed());
  return score.value;
}

Sample completion(const std::string& text, nlohmann::json record = nlohmann::json::object()) {
  Sample sample;
  sample.completion = text;
  sample.record = std::move(record);
  return sample;
}

}  // namespace

TEST_CASE("r1_format: think then answer, nothing after") {
  const std::string rule = "require('r1_format')()";
  CHECK(value_of(rule, completion("<think>reasoning</think><answer>42</answer>")) == 1.0);
  CHECK(value_of(rule, completion("<think>\nr\n</think>\n<answer>\n42\n</answer>\n")) == 1.0);
  CHECK(value_of(rule, completion("<think>r</think><answer>42</answer> and more")) == 0.0);
  CHECK(value_of(rule, completion("<think>r</think><answer>1</answer><answer>2</answer>")) == 0.0);
  CHECK(value_of(rule, completion("<think> </think><answer>42</answer>")) == 0.0);
  CHECK(value_of(rule, completion("<think>r</think><answer>  </answer>")) == 0.0);
  CHECK(value_of(rule, completion("<answer>42</answer>")) == 0.0);
  CHECK(value_of(rule, completion("preamble <think>r</think><answer>42</answer>")) == 0.0);
  CHECK(value_of(rule, completion("r</think><answer>4</answer>")) == 0.0);
  CHECK(value_of("require('r1_format'){ think_prefilled = true }", completion("r</think><answer>4</answer>")) == 1.0);
}

TEST_CASE("math_answer: boxed or answer tag, compared with math_equal") {
  const std::string rule = "require('math_answer')()";
  const nlohmann::json half = {{"answer", "\\frac{1}{2}"}};
  CHECK(value_of(rule, completion("so the answer is \\boxed{0.5}", half)) == 1.0);
  CHECK(value_of(rule, completion("<think>...</think><answer>1/2</answer>", half)) == 1.0);
  CHECK(value_of(rule, completion("<answer>The answer is \\boxed{\\frac12}.</answer>", half)) == 1.0);
  CHECK(value_of(rule, completion("\\boxed{2}", half)) == 0.0);
  CHECK(value_of(rule, completion("I think it is one half", half)) == 0.0);
  // A full reference solution as gold: its boxed part is the answer.
  const nlohmann::json solution = {{"solution", "Half of 1 is $\\boxed{\\frac{1}{2}}$."}};
  CHECK(value_of("require('math_answer'){ field = 'solution' }", completion("\\boxed{.5}", solution)) == 1.0);
  CHECK(value_of(rule, completion("\\boxed{3}", {{"answer", 3}})) == 1.0);  // numeric gold
  // Missing gold is a rule failure (reported), not a silent 0.
  RuleScore missing = score_with(rule, completion("\\boxed{1}"));
  CHECK(missing.failed());
  CHECK(missing.message.find("no 'answer' field") != std::string::npos);
}

TEST_CASE("gsm8k: last number against the number after ####") {
  const std::string rule = "require('gsm8k')()";
  const nlohmann::json record = {{"answer", "Natalia sold 48/2 = 24 clips in May.\n#### 72"}};
  CHECK(value_of(rule, completion("24 + 48 = 72, so she sold 72 clips.", record)) == 1.0);
  CHECK(value_of(rule, completion("She sold 72 clips.\n#### 72", record)) == 1.0);
  CHECK(value_of(rule, completion("The answer is 72.5", record)) == 0.0);
  CHECK(value_of(rule, completion("The answer is 1,072", record)) == 0.0);
  CHECK(value_of(rule, completion("#### 72\nwait, 71", record)) == 1.0);  // the #### line wins
  CHECK(value_of(rule, completion("no idea", record)) == 0.0);
  CHECK(value_of(rule, completion("It costs $1234.", {{"answer", "#### 1,234"}})) == 1.0);
  CHECK(value_of(rule, completion("It costs 1,234.00", {{"answer", "1234"}})) == 1.0);
}

TEST_CASE("countdown: TinyZero's 0 / 0.1 / 1 with exact arithmetic") {
  const std::string rule = "require('countdown')()";
  const nlohmann::json task = {{"numbers", {3, 5, 7}}, {"target", 22}};
  CHECK(value_of(rule, completion("<think>3*5=15</think><answer>3 * 5 + 7</answer>", task)) == 1.0);
  CHECK(value_of(rule, completion("<answer>(5 * 3) + 7</answer>", task)) == 1.0);
  CHECK(value_of(rule, completion("<answer>3 + 5 + 7</answer>", task)) == doctest::Approx(0.1));  // 15
  CHECK(value_of(rule, completion("<answer>3 * 5 + 7 + 7</answer>", task)) == doctest::Approx(0.1));
  CHECK(value_of(rule, completion("<answer>3 * 5 + 7 + 0</answer>", task)) == doctest::Approx(0.1));
  CHECK(value_of(rule, completion("<answer>15 + 7</answer>", task)) == doctest::Approx(0.1));
  CHECK(value_of(rule, completion("<answer>import os</answer>", task)) == doctest::Approx(0.1));
  CHECK(value_of(rule, completion("3 * 5 + 7 = 22", task)) == 0.0);
  // Intermediate fractions are exact: 6 / 3 * 4 and 4 / 3 * 6 are both 8.
  const nlohmann::json eight = {{"numbers", {6, 4, 3}}, {"target", 8}};
  CHECK(value_of(rule, completion("<answer>4 / 3 * 6</answer>", eight)) == 1.0);
  CHECK(value_of(rule, completion("<answer>6 / (4 - 3)</answer>", eight)) == doctest::Approx(0.1));
  // TinyZero's eval would hang on this; here it is a malformed answer.
  const nlohmann::json tower = {{"numbers", {44, 19, 35}}, {"target", 1}};
  CHECK(value_of(rule, completion("<answer>44 ** 19 ** 35</answer>", tower)) == doctest::Approx(0.1));
  CHECK(value_of("require('countdown'){ format_score = 0, score = 2 }",
                 completion("<answer>3 * 5 + 7</answer>", task)) == 2.0);
}

TEST_CASE("language_consistency: share of target-script letters in the think block") {
  const std::string rule = "require('language_consistency'){ script = 'latin' }";
  // hello (5 latin) + 你好 (2 han): 5 / 7.
  CHECK(value_of(rule, completion("<think>hello \xE4\xBD\xA0\xE5\xA5\xBD</think><answer>x</answer>")) ==
        doctest::Approx(5.0 / 7.0));
  CHECK(value_of(rule, completion("only english here")) == 1.0);
  CHECK(value_of(rule, completion("<think>1 + 2 = 3</think>")) == 0.0);
  // A per-sample target script from the record.
  CHECK(value_of(rule, completion("<think>hello \xE4\xBD\xA0\xE5\xA5\xBD</think>", {{"script", "han"}})) ==
        doctest::Approx(2.0 / 7.0));
}

TEST_CASE("dapo_overlong: DAPO's soft length penalty") {
  auto with_tokens = [](std::int64_t tokens) {
    Sample sample;
    sample.completion_tokens = tokens;
    return sample;
  };
  const std::string rule = "require('dapo_overlong'){ max_tokens = 100, cache_tokens = 20 }";
  CHECK(value_of(rule, with_tokens(10)) == 0.0);
  CHECK(value_of(rule, with_tokens(80)) == 0.0);
  CHECK(value_of(rule, with_tokens(90)) == doctest::Approx(-0.5));   // (80 - 90) / 20
  CHECK(value_of(rule, with_tokens(100)) == doctest::Approx(-1.0));  // (80 - 100) / 20
  CHECK(value_of(rule, with_tokens(101)) == -1.0);
  // DAPO's defaults: (12288 - 14000) / 4096.
  CHECK(value_of("require('dapo_overlong')()", with_tokens(14000)) == doctest::Approx(-0.41796875));
  CHECK(score_with(rule, Sample{}).failed());  // no token count
}

TEST_CASE("several shipped rules combine with weights in one rules file") {
  RuleSet rules = RuleSet::from_source(R"lua(
return {
  { name = "format", weight = 0.5, rule = require("r1_format")() },
  { name = "accuracy", weight = 1.0, rule = require("math_answer")() },
  { name = "overlong", weight = 1.0, rule = require("dapo_overlong"){ max_tokens = 100, cache_tokens = 20 } },
}
)lua", "r1_rules.lua");
  RuleScorer scorer(rules, SandboxLimits{});
  Sample sample = completion("<think>2+2</think><answer>\\boxed{4}</answer>", {{"answer", "4"}});
  sample.completion_tokens = 90;
  const SampleScore score = scorer.score(sample);
  CHECK(score.rules[0].value == 1.0);
  CHECK(score.rules[1].value == 1.0);
  CHECK(score.rules[2].value == doctest::Approx(-0.5));
  CHECK(score.total == doctest::Approx(0.5 * 1.0 + 1.0 - 0.5));
}
