// Agreement of verify.extract_answer + verify.math_equal with public checkers' test suites (by default
// Math-Verify's cases in tests/fixtures/rewards/math_verify_cases.jsonl and NeMo-Skills' math_equal
// cases in tests/fixtures/rewards/nemo_skills_math_equal_cases.jsonl): a table of cases, agreement,
// false "equal" verdicts (a prediction accepted that the suite rejects: a reward hack) and false
// "different" verdicts, per suite file and in all. Built and run by scripts/bench_math_answers.
// Usage: bench_math_answer_agreement [CASES.jsonl ...] [--list]   (--list prints every disagreement)
#include <fmt/core.h>

#include <cstring>
#include <exception>
#include <string>
#include <vector>

#include "rewards/math_suite.h"
#include "rewards/text_extract.h"

int main(int argc, char** argv) {
  std::vector<std::string> paths;
  bool list = false;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--list") == 0) {
      list = true;
    } else {
      paths.push_back(argv[i]);
    }
  }
  if (paths.empty()) {
    for (const char* name : {"math_verify_cases.jsonl", "nemo_skills_math_equal_cases.jsonl"}) {
      paths.push_back(std::string(GRPO_SOURCE_DIR) + "/tests/fixtures/rewards/" + name);
    }
  }
  try {
    std::vector<grpo::rewards::AnswerCase> cases;
    for (const std::string& path : paths) {
      const auto read = grpo::rewards::read_answer_cases(path);
      cases.insert(cases.end(), read.begin(), read.end());
      fmt::print("cases: {} ({})\n", path, read.size());
    }
    const auto agreement = grpo::rewards::measure_agreement(cases);
    fmt::print("\n");
    fmt::print("| suite file | cases | agreement | false \"equal\" | false \"different\" |\n");
    fmt::print("| --- | ---: | ---: | ---: | ---: |\n");
    for (const auto& row : agreement.rows) {
      fmt::print("| {} | {} | {:.1f}% | {} | {} |\n", row.group, row.cases,
                 row.cases ? 100.0 * row.agree / row.cases : 0.0, row.false_equal, row.false_different);
    }
    if (list) {
      for (const auto* c : agreement.disagreements) {
        const auto gold = c->extract ? grpo::rewards::extract_answer(c->gold, false).value_or(c->gold) : c->gold;
        const auto answer = c->extract ? grpo::rewards::extract_answer(c->predicted).value_or("(none)") : c->predicted;
        fmt::print("\n{} (suite: {})\n  gold answer:      {}\n  predicted answer: {}\n", c->source,
                   c->expected ? "equal" : "different", gold.substr(0, 300), answer.substr(0, 300));
      }
    }
  } catch (const std::exception& error) {
    fmt::print(stderr, "bench_math_answer_agreement: {}\n", error.what());
    return 1;
  }
  return 0;
}
