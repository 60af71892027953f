#include "policy/tokenizer/utf8.h"

namespace grpo::utf8 {

namespace {

bool is_continuation(unsigned char c) { return (c & 0xC0) == 0x80; }

// Expected sequence length from the lead byte and the allowed range of the second byte (RFC 3629,
// table 3-7 of the Unicode standard): this is what rules out overlong forms and surrogates.
struct LeadInfo {
  size_t length;
  unsigned char second_min, second_max;
};

LeadInfo lead_info(unsigned char c) {
  if (c < 0x80) return {1, 0, 0};
  if (c >= 0xC2 && c <= 0xDF) return {2, 0x80, 0xBF};
  if (c == 0xE0) return {3, 0xA0, 0xBF};
  if ((c >= 0xE1 && c <= 0xEC) || c == 0xEE || c == 0xEF) return {3, 0x80, 0xBF};
  if (c == 0xED) return {3, 0x80, 0x9F};
  if (c == 0xF0) return {4, 0x90, 0xBF};
  if (c >= 0xF1 && c <= 0xF3) return {4, 0x80, 0xBF};
  if (c == 0xF4) return {4, 0x80, 0x8F};
  return {0, 0, 0};
}

// How many leading bytes of s agree with a well-formed sequence (may be shorter than the sequence).
size_t matching_bytes(std::string_view s, const LeadInfo& info) {
  size_t n = 1;
  if (n < s.size() && n < info.length) {
    const auto c = static_cast<unsigned char>(s[1]);
    if (c < info.second_min || c > info.second_max) return n;
    ++n;
  }
  while (n < s.size() && n < info.length && is_continuation(static_cast<unsigned char>(s[n]))) ++n;
  return n;
}

}  // namespace

size_t valid_sequence_length(std::string_view s) {
  if (s.empty()) return 0;
  const LeadInfo info = lead_info(static_cast<unsigned char>(s[0]));
  if (info.length <= 1) return info.length;
  return matching_bytes(s, info) == info.length ? info.length : 0;
}

size_t incomplete_tail_length(std::string_view s) {
  // A lead byte at most 3 bytes from the end whose sequence is cut off by the end of s.
  for (size_t back = 1; back <= 3 && back <= s.size(); ++back) {
    const std::string_view tail = s.substr(s.size() - back);
    const LeadInfo info = lead_info(static_cast<unsigned char>(tail[0]));
    if (info.length == 0) continue;  // continuation or invalid byte: look further back
    return (info.length > back && matching_bytes(tail, info) == back) ? back : 0;
  }
  return 0;
}

size_t invalid_span_length(std::string_view s) {
  if (s.empty()) return 0;
  const LeadInfo info = lead_info(static_cast<unsigned char>(s[0]));
  if (info.length <= 1) return 1;
  return matching_bytes(s, info);
}

size_t valid_prefix_length(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    if (static_cast<unsigned char>(s[i]) < 0x80) {
      ++i;
      continue;
    }
    const size_t n = valid_sequence_length(s.substr(i));
    if (n == 0) break;
    i += n;
  }
  return i;
}

void append(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

}  // namespace grpo::utf8
