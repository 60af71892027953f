// The parts of an R1-style completion (reasoning before the end-of-thinking marker, summary after it)
// and the word share of a target language, in C++, through verify.* as rules call them, and through the
// shipped reasoning_language and completion_part rules; every value is counted by hand in the comments.
#include <doctest/doctest.h>

#include <stdexcept>
#include <string>

#include "rewards/completion_parts.h"
#include "rewards/rule_set.h"

using namespace grpo::rewards;

namespace {

double parts_rule_value(const std::string& rule_source, const std::string& completion_text,
                        nlohmann::json record = nlohmann::json::object()) {
  RuleSet rules = RuleSet::from_source(rule_source, "parts_rule.lua");
  RuleScorer scorer(rules, SandboxLimits{});
  Sample sample;
  sample.completion = completion_text;
  sample.record = std::move(record);
  const RuleScore score = scorer.score(sample).rules.at(0);
  INFO(score.message);
  REQUIRE_FALSE(score.failed());
  return score.value;
}

}  // namespace

TEST_CASE("split_reasoning: before and after the first marker, opening tag dropped, trimmed") {
  CompletionParts p = split_reasoning("<think> a b </think>  the answer \n");
  CHECK(p.reasoning == "a b");
  CHECK(p.summary == "the answer");
  CHECK(p.has_marker);
  // A short marker; the opening tag of a closing-tag marker is dropped whatever the marker.
  p = split_reasoning("<t>x</t>y</t>z", "</t>");
  CHECK(p.reasoning == "x");
  CHECK(p.summary == "y</t>z");  // the first marker splits; later ones belong to the summary
  // No marker: all of it is reasoning, the summary is empty.
  p = split_reasoning("<think>still thinking");
  CHECK(p.reasoning == "still thinking");
  CHECK(p.summary.empty());
  CHECK_FALSE(p.has_marker);
  // No opening tag is fine; a marker that is no closing tag drops nothing.
  p = split_reasoning("reason ## sum", "##");
  CHECK(p.reasoning == "reason");
  CHECK(p.summary == "sum");
  CHECK(split_reasoning("</think>only summary").reasoning.empty());
  CHECK_THROWS_AS(split_reasoning("x", ""), std::invalid_argument);
}

TEST_CASE("language_share counts words with letters, by script, character set or vocabulary") {
  // "hello мир 42 = world": words with letters: hello, мир, world (42 and = have none); latin 2 of 3.
  const std::string mixed = "hello \xD0\xBC\xD0\xB8\xD1\x80 42 = world";
  CHECK(language_share(mixed, *script_target("latin")) == doctest::Approx(2.0 / 3.0));
  CHECK(language_share(mixed, *script_target("cyrillic")) == doctest::Approx(1.0 / 3.0));
  // A word mixing scripts is not in either; punctuation at the ends is stripped ("(abc)," is abc).
  CHECK(language_share("ab\xD0\xBC (abc),", *script_target("latin")) == doctest::Approx(0.5));
  CHECK(language_share("1 + 2 = 3", *script_target("latin")) == 0.0);
  CHECK(language_share("", *script_target("latin")) == 0.0);
  CHECK_FALSE(script_target("klingon").has_value());
  // Two toy languages in one script: lower-case is the target, upper-case the other; x=1 has letter x.
  const LanguageTarget lower = chars_target("abcdefghijklmnopqrstuvwxyz");
  CHECK(language_share("add TWO then x=1 DONE", lower) == doctest::Approx(3.0 / 5.0));  // add, then, x=1
  // A vocabulary: words in the list count as the target, other words as not.
  LanguageTarget vocab;
  vocab.words = {"plus", "is"};
  CHECK(language_share("3 plus 4 is 7, piu", vocab) == doctest::Approx(2.0 / 3.0));
  CHECK_THROWS_AS(chars_target(""), std::invalid_argument);
}

TEST_CASE("verify.reasoning, summary, split_reasoning, language_share and language_consistency from a rule") {
  const double ok = parts_rule_value(R"lua(
return function(s)
  local r, m, found = verify.split_reasoning("<t>a b</t> c", "</t>")
  local checks = {
    verify.reasoning("<think>x</think>y") == "x",
    verify.summary("<think>x</think> y ") == "y",
    verify.summary("no marker") == "",
    verify.reasoning("no marker") == "no marker",
    r == "a b", m == "c", found == true,
    select(3, verify.split_reasoning("plain")) == false,
    verify.language_share("ab CD", { chars = "abCD" }) == 1,
    verify.language_share("ab CD", { chars = "ab" }) == 0.5,
    verify.language_share("plus piu", { words = { "plus" } }) == 0.5,
    verify.language_share("hello", "latin") == 1,
    -- reasoning "ab CD ef" (2 of 3 lower-case words); the summary "XY" is not scored
    math.abs(verify.language_consistency("<t>ab CD ef</t> XY", { chars = "abcdef" }, "</t>") - 2 / 3) < 1e-12,
    verify.language_consistency("<think>hello</think> \xD0\xBC\xD0\xB8\xD1\x80", "latin") == 1,
    not pcall(verify.language_share, "x", "klingon"),
    not pcall(verify.language_share, "x", {}),
    not pcall(verify.language_share, "x", { chars = "a", words = { "b" } }),
    not pcall(verify.reasoning, "x", ""),
  }
  for i, c in ipairs(checks) do if not c then error("check " .. i .. " failed") end end
  return 1
end
)lua",
                                     "");
  CHECK(ok == 1.0);
}

TEST_CASE("reasoning_language and completion_part: rules on one part of the completion") {
  // Reasoning "one TWO three" in lower case 2 of 3; the summary "FOUR" is left out.
  const std::string lang = "return require('reasoning_language'){ target = { chars = 'abcdefghijklmnopqrstuvwxyz' }, marker = '</t>' }";
  CHECK(parts_rule_value(lang, "<t>one TWO three</t>FOUR") == doctest::Approx(2.0 / 3.0));
  // The record's language field wins over options.target: upper case, 1 of 3.
  CHECK(parts_rule_value(lang, "<t>one TWO three</t>FOUR", {{"language", {{"chars", "ABCDEFGHIJKLMNOPQRSTUVWXYZ"}}}}) ==
        doctest::Approx(1.0 / 3.0));
  // The wrapped rule sees the summary as its completion, the rest of the sample as before.
  const std::string summary_len = R"lua(
return require('completion_part'){ part = "summary", marker = "</t>",
  rule = function(s) return #s.completion + (s.answer == "ok" and 100 or 0) + (#s.full_completion > #s.completion and 1000 or 0) end })lua";
  CHECK(parts_rule_value(summary_len, "<t>long reasoning</t> abc", {{"answer", "ok"}}) == 1103.0);  // 3 + 100 + 1000
  const std::string reasoning_len =
      "return require('completion_part'){ part = 'reasoning', rule = function(s) return #s.completion end }";
  CHECK(parts_rule_value(reasoning_len, "<think>abcd</think>xy") == 4.0);
  // Without the marker the summary is empty, or options.missing when given.
  const std::string with_missing =
      "return require('completion_part'){ missing = -1, rule = function(s) return #s.completion end }";
  CHECK(parts_rule_value(with_missing, "never closed") == -1.0);
  CHECK(parts_rule_value("return require('completion_part'){ rule = function(s) return #s.completion end }", "never closed") == 0.0);
}
