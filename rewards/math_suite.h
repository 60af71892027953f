#pragma once
// Agreement with another checker's test suite: (gold, prediction, expected verdict) cases read from
// JSON lines (tests/fixtures/rewards/math_verify_cases.jsonl holds Math-Verify's), each judged the way
// the math_answer rule judges free text with extract = true: the answer is extracted from the
// prediction (extract_answer) and from the gold (extract_answer without the last-number step, else
// the whole gold), then compared by math_equal. Used by bench/math_answer_agreement.cpp and its test.
#include <string>
#include <string_view>
#include <vector>

#include "rewards/math_equal.h"

namespace grpo::rewards {

struct AnswerCase {
  std::string source;  // where the case comes from ("tests/test_all.py::test_relations_math[3]")
  std::string gold, predicted;
  bool expected = false;  // the suite's verdict: equal or not
  // How the suite's checker was configured for the case (optional fields "targets" and "precision"):
  // without "expr" among the targets it extracts LaTeX only (no last-number fallback); "precision" is
  // its float rounding, our approximation_places.
  bool number_fallback = true;
  int approximation_places = 6;
  bool extract = true;  // false ("extract": false): the suite's checker compares bare answers
};

// Every line a JSON object with string fields source, gold, predicted and a boolean expected; optional
// "targets" (a string such as "latex,expr"), "precision" (an integer) and "extract" (a boolean).
// Throws std::runtime_error naming the file and line for anything else.
std::vector<AnswerCase> read_answer_cases(const std::string& path);

// The verdict on free text: extract both answers, then math_equal.
bool free_text_answers_equal(std::string_view predicted, std::string_view gold, bool number_fallback = true,
                             int approximation_places = 6);

struct AgreementRow {
  std::string group;  // the case source up to "::" (the suite's file), or "all"
  int cases = 0, agree = 0, false_equal = 0, false_different = 0;
};

struct Agreement {
  std::vector<AgreementRow> rows;          // per group in order of appearance, then "all" last
  std::vector<const AnswerCase*> disagreements;
};

Agreement measure_agreement(const std::vector<AnswerCase>& cases);

}  // namespace grpo::rewards
