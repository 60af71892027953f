#include "policy/tokenizer/byte_level.h"

#include <array>

#include "policy/tokenizer/utf8.h"

namespace grpo::byte_level {

namespace {

// bytes_to_unicode() of GPT-2: printable Latin-1 bytes stand for themselves, the other 68 bytes are
// numbered from U+0100 upwards in byte order.
struct Alphabet {
  std::array<char32_t, 256> code_point_of_byte{};
  std::array<int, 324> byte_of_code_point{};  // every stand-in is below U+0100 + 68

  Alphabet() {
    byte_of_code_point.fill(-1);
    int next_extra = 0;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
      const char32_t cp = printable ? static_cast<char32_t>(b) : static_cast<char32_t>(0x100 + next_extra++);
      code_point_of_byte[b] = cp;
      byte_of_code_point[cp] = b;
    }
  }
};

const Alphabet& alphabet() {
  static const Alphabet instance;
  return instance;
}

}  // namespace

char32_t byte_to_code_point(unsigned char b) { return alphabet().code_point_of_byte[b]; }

std::string byte_to_token_text(unsigned char b) {
  std::string s;
  utf8::append(s, byte_to_code_point(b));
  return s;
}

std::optional<std::string> token_text_to_bytes(std::string_view text) {
  const Alphabet& a = alphabet();
  std::string bytes;
  bytes.reserve(text.size());
  size_t i = 0;
  while (i < text.size()) {
    const size_t n = utf8::valid_sequence_length(text.substr(i));
    if (n == 0 || n > 2) return std::nullopt;  // every stand-in is U+0021..U+0143: 1 or 2 bytes
    uint32_t cp = static_cast<unsigned char>(text[i]);
    if (n == 2) cp = ((cp & 0x1F) << 6) | (static_cast<unsigned char>(text[i + 1]) & 0x3F);
    if (cp >= a.byte_of_code_point.size() || a.byte_of_code_point[cp] < 0) return std::nullopt;
    bytes += static_cast<char>(a.byte_of_code_point[cp]);
    i += n;
  }
  return bytes;
}

}  // namespace grpo::byte_level
