#include "rewards/completion_parts.h"

#include <stdexcept>

#include "rewards/script_ratio.h"

namespace grpo::rewards {
namespace {

bool is_ascii_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }
bool is_ascii_punctuation(char32_t c) {
  return (c >= 0x21 && c <= 0x2F) || (c >= 0x3A && c <= 0x40) || (c >= 0x5B && c <= 0x60) || (c >= 0x7B && c <= 0x7E);
}
bool is_ascii_digit(char32_t c) { return c >= U'0' && c <= U'9'; }

std::string_view trimmed(std::string_view s) {
  while (!s.empty() && is_ascii_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_ascii_space(s.back())) s.remove_suffix(1);
  return s;
}

// Decodes the code point at text[i], advancing i; an invalid byte decodes as U+FFFD and advances by one.
char32_t decode_at(std::string_view text, std::size_t& i) {
  const auto byte = [&](std::size_t k) { return static_cast<unsigned char>(text[k]); };
  const unsigned char lead = byte(i);
  const int length = lead < 0x80 ? 1 : (lead >> 5) == 0x6 ? 2 : (lead >> 4) == 0xE ? 3 : (lead >> 3) == 0x1E ? 4 : 0;
  if (length == 0 || i + static_cast<std::size_t>(length) > text.size()) {
    ++i;
    return 0xFFFD;
  }
  char32_t code = length == 1 ? lead : lead & (0x7F >> length);
  for (int k = 1; k < length; ++k) {
    if ((byte(i + static_cast<std::size_t>(k)) & 0xC0) != 0x80) {
      ++i;
      return 0xFFFD;
    }
    code = (code << 6) | (byte(i + static_cast<std::size_t>(k)) & 0x3F);
  }
  i += static_cast<std::size_t>(length);
  return code;
}

// Whether one word (punctuation already stripped) counts, and whether it is in the target.
struct WordVerdict {
  bool counts = false, in_target = false;
};

WordVerdict judge_word(std::string_view word, const LanguageTarget& target) {
  WordVerdict v;
  bool all_in = true;
  for (std::size_t i = 0; i < word.size();) {
    const char32_t c = decode_at(word, i);
    if (target.script) {
      const std::uint32_t found = script_mask_of(c);
      if (found == 0) continue;
      v.counts = true;
      if (!(found & *target.script)) all_in = false;
    } else {
      if (is_ascii_digit(c) || is_ascii_punctuation(c)) continue;
      v.counts = true;
      if (target.words.empty() && !target.chars.count(c)) all_in = false;
    }
  }
  v.in_target = v.counts && (target.script || !target.chars.empty() ? all_in : target.words.count(std::string(word)) > 0);
  return v;
}

}  // namespace

CompletionParts split_reasoning(std::string_view text, std::string_view marker) {
  if (marker.empty()) throw std::invalid_argument("the end-of-thinking marker is empty");
  CompletionParts parts;
  std::string_view reasoning = text;
  const std::size_t at = text.find(marker);
  if (at != std::string_view::npos) {
    parts.has_marker = true;
    reasoning = text.substr(0, at);
    parts.summary = trimmed(text.substr(at + marker.size()));
  }
  reasoning = trimmed(reasoning);
  if (marker.size() > 3 && marker.substr(0, 2) == "</") {
    const std::string opening = "<" + std::string(marker.substr(2));
    if (reasoning.substr(0, opening.size()) == opening) reasoning = trimmed(reasoning.substr(opening.size()));
  }
  parts.reasoning = reasoning;
  return parts;
}

std::optional<LanguageTarget> script_target(std::string_view script) {
  const std::optional<std::uint32_t> mask = script_mask_named(script);
  if (!mask) return std::nullopt;
  LanguageTarget t;
  t.script = mask;
  return t;
}

LanguageTarget chars_target(std::string_view chars) {
  LanguageTarget t;
  for (std::size_t i = 0; i < chars.size();) t.chars.insert(decode_at(chars, i));
  if (t.chars.empty()) throw std::invalid_argument("the target character set is empty");
  return t;
}

double language_share(std::string_view text, const LanguageTarget& target) {
  std::size_t words = 0, in_target = 0;
  std::size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && is_ascii_space(text[i])) ++i;
    std::size_t end = i;
    while (end < text.size() && !is_ascii_space(text[end])) ++end;
    std::string_view word = text.substr(i, end - i);
    i = end;
    while (!word.empty() && is_ascii_punctuation(static_cast<unsigned char>(word.front()))) word.remove_prefix(1);
    while (!word.empty() && is_ascii_punctuation(static_cast<unsigned char>(word.back()))) word.remove_suffix(1);
    if (word.empty()) continue;
    const WordVerdict v = judge_word(word, target);
    words += v.counts;
    in_target += v.in_target;
  }
  return words == 0 ? 0.0 : static_cast<double>(in_target) / static_cast<double>(words);
}

}  // namespace grpo::rewards
