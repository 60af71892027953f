// Scoring a JSONL file as `grpo rewards` does: scored records, the per-rule summary, and errors that
// name the file and line.
#include <doctest/doctest.h>

#include <fstream>
#include <sstream>
#include <string>

#include "rewards/score_jsonl.h"

using namespace grpo::rewards;

namespace {
const std::string kFixtures = std::string(GRPO_SOURCE_DIR) + "/tests/fixtures/rewards/";
}

TEST_CASE("score_jsonl writes every record with its rewards and summarises each rule") {
  ScorerPool pool(RuleSet::from_file(kFixtures + "math_rules.lua"), 2);
  std::ostringstream output;
  const ScoreFileSummary summary = score_jsonl(pool, kFixtures + "math_samples.jsonl", &output, /*batch_size=*/3);
  CHECK(summary.samples == 4);

  std::istringstream lines(output.str());
  std::vector<nlohmann::json> records;
  for (std::string line; std::getline(lines, line);) records.push_back(nlohmann::json::parse(line));
  REQUIRE(records.size() == 4);
  // Record 1: format 1, accuracy 1 (0.75 = 3/4), 30 tokens -> no penalty: 0.5 + 1 + 0.
  CHECK(records[0]["prompt"] == "What is 1/2 + 1/4?");  // the original fields stay
  CHECK(records[0]["rewards"]["format"] == 1.0);
  CHECK(records[0]["rewards"]["accuracy"] == 1.0);
  CHECK(records[0]["rewards"]["overlong"] == 0.0);
  CHECK(records[0]["reward"] == doctest::Approx(1.5));
  // Record 2: format 1, wrong answer, 90 tokens -> (80 - 90) / 20 = -0.5.
  CHECK(records[1]["reward"] == doctest::Approx(0.5 + 0.0 - 0.5));
  // Record 3: no tags -> format 0, boxed 9 correct, 120 tokens -> -1.
  CHECK(records[2]["rewards"]["format"] == 0.0);
  CHECK(records[2]["rewards"]["accuracy"] == 1.0);
  CHECK(records[2]["reward"] == doctest::Approx(0.0));
  // Record 4: accuracy fails (no gold): reported on the record, scored 0.
  CHECK(records[3]["rewards"]["accuracy"] == 0.0);
  CHECK(records[3]["reward_failures"]["accuracy"].get<std::string>().find("no 'answer' field") != std::string::npos);
  CHECK_FALSE(records[0].contains("reward_failures"));

  REQUIRE(summary.values.size() == 4);  // three rules and the total
  const ValueSummary& accuracy = summary.values[1];
  CHECK(accuracy.name == "accuracy");
  CHECK(accuracy.mean() == doctest::Approx(0.5));  // 1, 0, 1, 0
  CHECK(accuracy.failures == 1);
  CHECK(accuracy.first_failure.find("no 'answer' field") != std::string::npos);
  const ValueSummary& overlong = summary.values[2];
  CHECK(overlong.min == -1.0);
  CHECK(overlong.max == 0.0);
  CHECK(overlong.mean() == doctest::Approx((0.0 - 0.5 - 1.0 + 0.0) / 4));
  CHECK(summary.values[3].name == "total");
  CHECK(summary.values[3].mean() == doctest::Approx((1.5 + 0.0 + 0.0 + 0.5) / 4));

  const std::string table = format_summary(summary, pool.rule_set());
  CHECK(table.find("4 samples") != std::string::npos);
  CHECK(table.find("accuracy") != std::string::npos);
}

TEST_CASE("named parts of a multi-valued rule are reported as rule.part") {
  ScorerPool pool(RuleSet::from_source("return function(s) return { a = 1, b = #s.completion } end", "parts.lua"), 1);
  std::ostringstream output;
  const ScoreFileSummary summary = score_jsonl(pool, kFixtures + "math_samples.jsonl", &output);
  const nlohmann::json first = nlohmann::json::parse(output.str().substr(0, output.str().find('\n')));
  CHECK(first["rewards"]["parts.a"] == 1.0);
  CHECK(first["rewards"]["parts"] == doctest::Approx(1.0 + first["completion"].get<std::string>().size()));
  REQUIRE(summary.values.size() == 4);
  CHECK(summary.values[1].name == "parts.a");
  CHECK(summary.values[2].name == "parts.b");
}

TEST_CASE("a malformed line names the file and line and a missing file is an error") {
  ScorerPool pool(RuleSet::from_source("return function(s) return 1 end", "one.lua"), 1);
  try {
    score_jsonl(pool, kFixtures + "malformed.jsonl", nullptr);
    FAIL("no error");
  } catch (const SampleFileError& error) {
    CHECK(std::string(error.what()).find("malformed.jsonl:2: malformed JSON") != std::string::npos);
  }
  CHECK_THROWS_AS(score_jsonl(pool, kFixtures + "missing.jsonl", nullptr), SampleFileError);
}

TEST_CASE("the total row counts samples on which any rule failed; each failing rule's first message is printed once") {
  // a fails on samples 1 and 2, b on samples 2 and 3, c never: three samples with a failure, not four.
  ScorerPool pool(RuleSet::from_source(R"lua(
return {
  { name = "a", rule = function(s) if s.n <= 2 then error("a refuses sample " .. s.n .. " " .. string.rep("-", 120) .. " end of a", 0) end return 1 end },
  { name = "b", rule = function(s) if s.n == 2 or s.n == 3 then error("b refuses sample " .. s.n, 0) end return 2 end },
  { name = "c", rule = function(s) return 0 end },
}
)lua", "failing.lua"), 2);
  const std::string path = std::string(GRPO_BINARY_DIR) + "/rewards_score_jsonl_failures.jsonl";
  {
    std::ofstream file(path);
    for (int n = 1; n <= 4; ++n) file << "{\"completion\": \"x\", \"n\": " << n << "}\n";
  }
  const ScoreFileSummary summary = score_jsonl(pool, path, nullptr, /*batch_size=*/3);
  REQUIRE(summary.values.size() == 4);
  CHECK(summary.values[0].failures == 2);
  CHECK(summary.values[1].failures == 2);
  CHECK(summary.values[2].failures == 0);
  CHECK(summary.values[3].name == "total");
  CHECK(summary.values[3].failures == 3);
  // Totals: 0 + 0 (sample 1: a fails, b 2) -> 2; sample 2: 0; sample 3: 1; sample 4: 3.
  CHECK(summary.values[3].mean() == doctest::Approx((2.0 + 0.0 + 1.0 + 3.0) / 4));

  const std::string table = format_summary(summary, pool.rule_set());
  INFO(table);
  const auto count = [&](const std::string& needle) {
    int found = 0;
    for (std::size_t at = table.find(needle); at != std::string::npos; at = table.find(needle, at + 1)) ++found;
    return found;
  };
  std::istringstream lines(table);
  std::string line, total_row;
  while (std::getline(lines, line)) {
    if (line.rfind("total ", 0) == 0) total_row = line;
  }
  CHECK(total_row.substr(total_row.find_last_not_of(' ') ) == "3");
  CHECK(count("a refuses sample 1") == 1);  // the first message of a, whole
  CHECK(count(" end of a") == 1);
  CHECK(count("a refuses sample 2") == 0);
  CHECK(count("b refuses sample 2") == 1);
  CHECK(count("b refuses sample 3") == 0);
  CHECK(count("  a (failed on 2 of 4 samples): a refuses") == 1);
  CHECK(count("  b (failed on 2 of 4 samples): b refuses") == 1);
  CHECK(count("  c (") == 0);
}
