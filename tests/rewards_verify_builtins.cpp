// The verify built-ins other than math_equal: extraction, safe arithmetic, script ratio, and their
// Lua bindings as rules call them.
#include <doctest/doctest.h>

#include <string>

#include "rewards/arith_eval.h"
#include "rewards/rule_set.h"
#include "rewards/script_ratio.h"
#include "rewards/text_extract.h"

using namespace grpo::rewards;

TEST_CASE("extract_boxed takes the last box, with nested braces") {
  CHECK(extract_boxed("so \\boxed{42}.") == "42");
  CHECK(extract_boxed("\\boxed{1} then \\boxed{\\frac{1}{2}}") == "\\frac{1}{2}");
  CHECK(extract_boxed("\\boxed{\\frac{\\sqrt{3}}{2}} done") == "\\frac{\\sqrt{3}}{2}");
  CHECK(extract_boxed("\\fbox{7}") == "7");
  CHECK(extract_boxed("\\boxed 5 is it") == "5");
  CHECK(extract_boxed("\\boxed{\\{1,2\\}}") == "\\{1,2\\}");
  CHECK(extract_boxed("\\boxed{3} and then \\boxed{4") == "3");  // unbalanced last box: the one before
  CHECK_FALSE(extract_boxed("no box here").has_value());
  CHECK_FALSE(extract_boxed("\\boxed{unclosed").has_value());
  // A completion full of unclosed boxes: a bounded number of boxes is tried from the end.
  std::string unclosed;
  for (int i = 0; i < 20000; ++i) unclosed += "\\boxed{";
  CHECK_FALSE(extract_boxed(unclosed).has_value());
  CHECK(extract_boxed("\\boxed{1} \\boxed{ \\boxed{ \\boxed{") == "1");
}

TEST_CASE("extract_tag takes the last closed tag, trimmed") {
  CHECK(extract_tag("<answer> 42 </answer>", "answer") == "42");
  CHECK(extract_tag("<answer>1</answer> <answer>2</answer>", "answer") == "2");
  CHECK(extract_tag("<think>a</think><answer>\nx = 3\n</answer>", "think") == "a");
  CHECK_FALSE(extract_tag("<answer>open", "answer").has_value());
  CHECK_FALSE(extract_tag("</answer>", "answer").has_value());
  CHECK_FALSE(extract_tag("<answers>1</answers>", "answer").has_value());
}

TEST_CASE("last_number finds the last number as written") {
  CHECK(last_number("She has 3 apples and buys 4 more: 7.") == "7");
  CHECK(last_number("#### 1,234") == "1234");
  CHECK(last_number("total 1,234,567.89 dollars") == "1234567.89");
  CHECK(last_number("it is -5") == "-5");
  CHECK(last_number("x-5") == "5");  // a minus after a letter is subtraction, not a sign
  CHECK(last_number("3.5 and 2") == "2");
  CHECK(last_number("list 1,2") == "2");  // not a thousands group
  CHECK_FALSE(last_number("no digits").has_value());
}

TEST_CASE("eval_arith computes exact rationals and refuses what is not arithmetic") {
  auto value = [](const char* text) {
    ArithResult result = eval_arith(text);
    return result.value ? result.value->to_string() : "error: " + result.error;
  };
  CHECK(value("1 + 2 * 3") == "7");
  CHECK(value("(1 + 2) * 3") == "9");
  CHECK(value("(25 - 5) * 4 / 2") == "40");
  CHECK(value("1 / 3 + 1 / 6") == "1/2");
  CHECK(value("10 / 4") == "5/2");
  CHECK(value("-3 + 5") == "2");
  CHECK(value("2 - -3") == "5");
  CHECK(value("0.5 * 4") == "2");
  CHECK(value("6 \xC3\x97 7") == "42");         // ×
  CHECK(value("84 \xC3\xB7 2") == "42");        // ÷
  CHECK(value("50 \xE2\x88\x92 8") == "42");    // −
  CHECK(value("100 - 99 - 1") == "0");
  CHECK(value("8 / 4 / 2") == "1");
  CHECK(value("1 / 0").find("division by zero") != std::string::npos);
  CHECK(value("44 ** 19 ** 35").find("exponentiation") != std::string::npos);
  CHECK(value("2 ^ 3").rfind("error", 0) == 0);
  CHECK(value("import os").rfind("error", 0) == 0);
  CHECK(value("(1 + 2").find("missing ')'") != std::string::npos);
  CHECK(value("").rfind("error", 0) == 0);
  CHECK(value("99999999999 * 99999999999 * 99999999999").find("overflow") != std::string::npos);
  CHECK(value(std::string(2000, '(').c_str()).rfind("error", 0) == 0);
  CHECK(value((std::string(150, '(') + "1" + std::string(150, ')')).c_str()).find("deep") != std::string::npos);
}

TEST_CASE("script_ratio counts letters of a script among all letters") {
  CHECK(script_ratio("hello world", "latin") == 1.0);
  CHECK(script_ratio("\xE4\xBD\xA0\xE5\xA5\xBD", "han") == 1.0);  // 你好
  // 你好 ab: 2 han letters, 2 latin letters; digits and punctuation do not count.
  CHECK(script_ratio("\xE4\xBD\xA0\xE5\xA5\xBD ab 123!", "han") == doctest::Approx(0.5));
  CHECK(script_ratio("\xE4\xBD\xA0\xE5\xA5\xBD ab 123!", "latin") == doctest::Approx(0.5));
  CHECK(script_ratio("\xD0\xBF\xD1\x80\xD0\xB8 abc", "cyrillic") == doctest::Approx(0.5));  // при
  CHECK(script_ratio("caf\xC3\xA9", "latin") == 1.0);  // é is latin
  CHECK(script_ratio("123 !!", "latin") == 0.0);
  CHECK(script_ratio("\xff\xfe abc", "latin") == 1.0);  // invalid bytes skipped
  CHECK_FALSE(script_ratio("abc", "klingon").has_value());
}

TEST_CASE("verify functions as rules call them") {
  RuleSet rules = RuleSet::from_source(R"lua(
return function(s)
  local checks = {
    verify.extract_boxed("so \\boxed{\\frac{1}{2}}") == "\\frac{1}{2}",
    verify.extract_boxed("none") == nil,
    verify.extract_tag("<answer> 7 </answer>", "answer") == "7",
    verify.last_number("#### 1,234") == 1234,
    math.type(verify.last_number("#### 1,234")) == "integer",
    verify.last_number("pi is 3.14") == 3.14,
    verify.math_equal("\\frac{1}{2}", "0.5") == true,
    verify.math_equal("2", "3") == false,
    verify.math_equal(nil, "3") == false,
    verify.math_equal(0.5, "1/2") == true,
    select(1, verify.eval_arith("(1 + 2) * 4")) == 12,
    select(2, verify.eval_arith("1 / 3")) == "1/3",
    verify.eval_arith("1 / 0") == nil,
    select(2, verify.eval_arith("1 / 0")):find("division") ~= nil,
    verify.script_ratio("abc", "latin") == 1.0,
    not pcall(verify.script_ratio, "abc", "klingon"),
    not pcall(verify.extract_boxed, {}),
  }
  for i, ok in ipairs(checks) do
    if not ok then error("check " .. i .. " failed") end
  end
  return #checks
end
)lua", "verify_api.lua");
  RuleScorer scorer(rules, SandboxLimits{});
  const SampleScore score = scorer.score(Sample{});
  INFO(score.rules[0].message);
  CHECK(score.rules[0].value == 17.0);
}
