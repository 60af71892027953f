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

}  // namespace grpo::rewards
