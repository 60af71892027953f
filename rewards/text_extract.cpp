#include "rewards/text_extract.h"

#include <cctype>

namespace grpo::rewards {
namespace {

bool is_digit(char c) { return c >= '0' && c <= '9'; }

std::string_view trim(std::string_view text) {
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.front()))) text.remove_prefix(1);
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) text.remove_suffix(1);
  return text;
}

// The braced group starting at text[open] == '{', without its braces; nullopt if unbalanced.
std::optional<std::string> braced_group(std::string_view text, std::size_t open) {
  int depth = 0;
  for (std::size_t i = open; i < text.size(); ++i) {
    if (text[i] == '\\' && i + 1 < text.size()) {  // \{ and \} are literal braces
      ++i;
      continue;
    }
    if (text[i] == '{') ++depth;
    if (text[i] == '}' && --depth == 0) return std::string(text.substr(open + 1, i - open - 1));
  }
  return std::nullopt;
}

// The argument of the command ending just before `at`: a braced group, or "\boxed 5" up to a space or $.
std::optional<std::string> command_argument(std::string_view text, std::size_t at) {
  std::size_t i = at;
  while (i < text.size() && text[i] == ' ') ++i;
  if (i < text.size() && text[i] == '{') return braced_group(text, i);
  if (i == at) return std::nullopt;  // "\boxedx" is another command
  std::size_t end = i;
  while (end < text.size() && !std::isspace(static_cast<unsigned char>(text[end])) && text[end] != '$') ++end;
  if (end == i) return std::nullopt;
  return std::string(text.substr(i, end - i));
}

}  // namespace

// How many boxes, from the last, are tried when the later ones are unbalanced: each try scans to the
// end of the text, so unbounded retries would be quadratic on a completion full of "\boxed{".
constexpr int kBoxAttempts = 8;

std::optional<std::string> extract_boxed(std::string_view text) {
  std::size_t search_end = text.size();
  for (int attempt = 0; attempt < kBoxAttempts; ++attempt) {
    const std::size_t boxed = text.rfind("\\boxed", search_end);
    const std::size_t fbox = text.rfind("\\fbox", search_end);
    std::size_t at = std::string_view::npos;
    std::size_t length = 0;
    if (boxed != std::string_view::npos && (fbox == std::string_view::npos || boxed > fbox)) {
      at = boxed;
      length = 6;
    } else if (fbox != std::string_view::npos) {
      at = fbox;
      length = 5;
    }
    if (at == std::string_view::npos) return std::nullopt;
    if (auto content = command_argument(text, at + length)) return content;
    if (at == 0) return std::nullopt;
    search_end = at - 1;  // an unusable last box: look at the one before
  }
  return std::nullopt;
}

std::optional<std::string> extract_tag(std::string_view text, std::string_view tag) {
  if (tag.empty()) return std::nullopt;
  const std::string open = "<" + std::string(tag) + ">";
  const std::string close = "</" + std::string(tag) + ">";
  const std::size_t end = text.rfind(close);
  if (end == std::string_view::npos) return std::nullopt;
  const std::size_t start = text.rfind(open, end);
  if (start == std::string_view::npos) return std::nullopt;
  return std::string(trim(text.substr(start + open.size(), end - start - open.size())));
}

std::optional<std::string> last_number(std::string_view text) {
  std::optional<std::string> last;
  std::size_t i = 0;
  while (i < text.size()) {
    if (!is_digit(text[i])) {
      ++i;
      continue;
    }
    const std::size_t start = i;
    std::string number;
    while (i < text.size() && is_digit(text[i])) number += text[i++];
    // Thousands groups: ",ddd" not followed by another digit ("1,234,567" but not "1,2345" or "1,2").
    while (i + 3 < text.size() + 0 && text[i] == ',' && is_digit(text[i + 1]) && is_digit(text[i + 2]) &&
           is_digit(text[i + 3]) && (i + 4 >= text.size() || !is_digit(text[i + 4]))) {
      number.append(text.substr(i + 1, 3));
      i += 4;
    }
    if (i + 1 < text.size() && text[i] == '.' && is_digit(text[i + 1])) {
      number += text[i++];
      while (i < text.size() && is_digit(text[i])) number += text[i++];
    }
    const bool negative = start > 0 && text[start - 1] == '-' &&
                          (start == 1 || !std::isalnum(static_cast<unsigned char>(text[start - 2])));
    last = negative ? "-" + number : number;
  }
  return last;
}

}  // namespace grpo::rewards
