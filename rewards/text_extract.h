#pragma once
// Answer extraction from model completions (exposed to rules as verify.extract_boxed, extract_tag,
// last_number). Each returns nullopt when there is nothing to extract.
#include <optional>
#include <string>
#include <string_view>

namespace grpo::rewards {

// Content of the last \boxed{...} or \fbox{...}, nested braces matched ("\boxed{\frac{1}{2}}" gives
// "\frac{1}{2}"); also the brace-less form "\boxed 5". An unbalanced last box falls back to the one
// before (up to 8 boxes back); nullopt when none is usable.
std::optional<std::string> extract_boxed(std::string_view text);

// Content of the last <tag>...</tag> (tag names match exactly), trimmed of surrounding whitespace.
std::optional<std::string> extract_tag(std::string_view text, std::string_view tag);

// The last number in the text as written: optional sign, digits with optional thousands commas, an
// optional decimal part ("The answer is 1,234.5." gives "1234.5"; "-3" gives "-3"). Thousands commas
// are dropped; a trailing period is not part of the number.
std::optional<std::string> last_number(std::string_view text);

// The final answer of a free-text solution, as a dataset or a model writes it (verify.extract_answer):
//   1. the last \boxed{...} / \fbox{...}; boxes that directly follow one another, separated only by
//      commas, "and", spacing or $ ("\boxed{-2} and \boxed{1}"), are joined into one list "-2, 1";
//   2. else the later of: the last math span ($...$, $$...$$, \[...\], \(...\)), and the last
//      "final answer is X" / "the answer is X" / "answer: X" phrase (case-insensitive; X up to the
//      end of its sentence or line, or the math span right after the phrase);
//   3. else the last number, written as it stands: signs, decimal points or commas and thousands
//      groups kept ("1 000,99", "2,74"), so math_equal can read them in context.
// nullopt when none of these is there. `last_number_fallback` false leaves step 3 out (for a gold
// text that is the answer itself, "x^2 + 1", rather than a solution that ends in it).
std::optional<std::string> extract_answer(std::string_view text, bool last_number_fallback = true);

}  // namespace grpo::rewards
