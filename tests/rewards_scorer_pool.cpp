// The scorer pool: several threads, results in input order, weighted totals, multi-valued rules and
// failure counts with the first message.
#include <doctest/doctest.h>

#include <string>

#include "rewards/scorer_pool.h"

using namespace grpo::rewards;

namespace {

std::vector<Sample> numbered_samples(int count) {
  std::vector<Sample> samples;
  for (int i = 0; i < count; ++i) {
    Sample sample;
    sample.completion = std::string(static_cast<std::size_t>(i % 7), 'x');
    sample.record = {{"id", i}, {"tags", {"a", "b"}}, {"meta", {{"level", i % 3}}}};
    sample.completion_tokens = i * 10;
    sample.finish_reason = i % 2 ? "length" : "stop";
    samples.push_back(sample);
  }
  return samples;
}

}  // namespace

TEST_CASE("the pool scores a batch on several threads and keeps input order") {
  RuleSet rules = RuleSet::from_source(
      "return {\n"
      "  { name = 'id', weight = 0.5, rule = function(s) return s.id * 2 end },\n"
      "  { name = 'fields', rule = function(s)\n"
      "      return { length = #s.completion, tokens = s.completion_tokens,\n"
      "               level = s.meta.level, tags = #s.tags,\n"
      "               stopped = s.finish_reason == 'stop' and 1 or 0 } end },\n"
      "  { name = 'odd_fails', weight = 3, rule = function(s)\n"
      "      if s.id % 2 == 1 then error('odd id ' .. s.id) end return 1 end },\n"
      "}",
      "pool.lua");
  REQUIRE(rules.rules().size() == 3);
  CHECK(rules.rules()[0].name == "id");
  CHECK(rules.rules()[0].weight == 0.5);
  CHECK(rules.rules()[1].weight == 1.0);

  ScorerPool pool(rules, 2);
  const std::vector<Sample> samples = numbered_samples(1000);
  const std::vector<SampleScore> scores = pool.score(samples);
  REQUIRE(scores.size() == samples.size());
  for (int i = 0; i < 1000; ++i) {
    const SampleScore& score = scores[static_cast<std::size_t>(i)];
    CHECK(score.rules[0].value == 2.0 * i);
    const double length = i % 7, tokens = i * 10.0, level = i % 3, tags = 2, stopped = i % 2 ? 0 : 1;
    REQUIRE(score.rules[1].parts.size() == 5);
    CHECK(score.rules[1].parts[0].first == "length");  // sorted by name
    CHECK(score.rules[1].parts[0].second == length);
    CHECK(score.rules[1].parts[1].first == "level");
    CHECK(score.rules[1].parts[4].first == "tokens");
    CHECK(score.rules[1].parts[4].second == tokens);
    CHECK(score.rules[1].value == length + tokens + level + tags + stopped);
    CHECK(score.rules[2].failed() == (i % 2 == 1));
    const double expected_total = 0.5 * 2.0 * i + (length + tokens + level + tags + stopped) +
                                  3.0 * (i % 2 == 1 ? 0.0 : 1.0);
    CHECK(score.total == doctest::Approx(expected_total));
  }
  REQUIRE(pool.failures().size() == 3);
  CHECK(pool.failures()[0].count == 0);
  CHECK(pool.failures()[2].count == 500);
  CHECK(pool.failures()[2].first_message.find("odd id 1") != std::string::npos);

  // Counts accumulate across batches; an empty batch is fine.
  CHECK(pool.score({}).empty());
  pool.score(numbered_samples(4));
  CHECK(pool.failures()[2].count == 502);
}

TEST_CASE("a single-function rules file is one rule named after the file") {
  RuleSet rules = RuleSet::from_source("return function(s) return 1 end", "/some/dir/my_rule.lua");
  REQUIRE(rules.rules().size() == 1);
  CHECK(rules.rules()[0].name == "my_rule");
  CHECK(rules.rules()[0].weight == 1.0);
}

TEST_CASE("per-rule limits in the rules file override the pool's") {
  RuleSet rules = RuleSet::from_source(
      "return {\n"
      "  { name = 'short', instructions = 1e5, rule = function(s) for i = 1, 1e6 do end return 1 end },\n"
      "  { name = 'long', rule = function(s) for i = 1, 1e6 do end return 1 end },\n"
      "}",
      "limits.lua");
  ScorerPool pool(rules, 1);
  const SampleScore score = pool.score(numbered_samples(1))[0];
  CHECK(score.rules[0].failure == CallFailure::instructions);
  CHECK(score.rules[1].value == 1.0);
}

TEST_CASE("unusable rules files are refused with the file and line") {
  auto message_of = [](const std::string& source) {
    try {
      RuleSet::from_source(source, "bad_rules.lua");
    } catch (const RuleSetError& error) {
      return std::string(error.what());
    }
    return std::string("no error");
  };
  CHECK(message_of("return function(s)\n  return 1 +\nend").find("bad_rules.lua:3") != std::string::npos);
  CHECK(message_of("return 42").find("must return a function or a list") != std::string::npos);
  CHECK(message_of("return {}").find("empty") != std::string::npos);
  CHECK(message_of("return { { rule = function() end } }").find("name") != std::string::npos);
  CHECK(message_of("return { { name = 'a', rule = 1 } }").find("'rule' must be a function") !=
        std::string::npos);
  CHECK(message_of("return { { name = 'a', rule = print } }").find("'rule' must be a function") !=
        std::string::npos);
  CHECK(message_of("return { { name = 'a', weight = 'x', rule = function() end } }").find("weight") !=
        std::string::npos);
  CHECK(message_of("return { { name = 'a', rule = function() end }, { name = 'a', rule = function() end } }")
            .find("duplicate") != std::string::npos);
  CHECK(message_of("while true do end").find("instruction budget") != std::string::npos);
  CHECK(message_of("error('boom')").find("bad_rules.lua:1: boom") != std::string::npos);
  CHECK_THROWS_AS(RuleSet::from_file("/nonexistent/rules.lua"), RuleSetError);
}

TEST_CASE("hostile rules on several threads are contained per sample and counted") {
  RuleSet rules = RuleSet::from_source(
      "return {\n"
      "  { name = 'hostile', rule = function(s)\n"
      "      if s.id % 3 == 1 then while true do end end\n"
      "      if s.id % 3 == 2 then local t = {} for i = 1, 1e9 do t[i] = ('x'):rep(100) .. i end end\n"
      "      return s.id end },\n"
      "  { name = 'steady', rule = function(s) return 1 end },\n"
      "}",
      "hostile_pool.lua");
  SandboxLimits limits;
  limits.instructions = 5'000'000;
  limits.memory_bytes = 16u << 20;
  ScorerPool pool(rules, 2, limits);
  const std::vector<SampleScore> scores = pool.score(numbered_samples(12));
  for (int i = 0; i < 12; ++i) {
    const SampleScore& score = scores[static_cast<std::size_t>(i)];
    const CallFailure expected = i % 3 == 0 ? CallFailure::none : i % 3 == 1 ? CallFailure::instructions
                                                                              : CallFailure::memory;
    CHECK(score.rules[0].failure == expected);
    CHECK(score.rules[0].value == (i % 3 == 0 ? i : 0));
    CHECK(score.rules[1].value == 1.0);
  }
  CHECK(pool.failures()[0].count == 8);
  CHECK(pool.failures()[0].first_message.find("instruction budget") != std::string::npos);  // sample 1
  CHECK(pool.failures()[1].count == 0);
}
