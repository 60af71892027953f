#include "rewards/script_ratio.h"

#include <cstdint>

namespace grpo::rewards {
namespace {

enum Script : std::uint32_t {
  kLatin = 1 << 0, kHan = 1 << 1, kCyrillic = 1 << 2, kGreek = 1 << 3, kArabic = 1 << 4,
  kHebrew = 1 << 5, kDevanagari = 1 << 6, kThai = 1 << 7, kHangul = 1 << 8, kHiragana = 1 << 9,
  kKatakana = 1 << 10,
};

struct Range {
  char32_t first, last;
  Script script;
};

// Letter blocks of each script (Unicode block boundaries; punctuation inside them is rare in text).
constexpr Range kRanges[] = {
    {U'A', U'Z', kLatin},          {U'a', U'z', kLatin},           {0x00C0, 0x00D6, kLatin},
    {0x00D8, 0x00F6, kLatin},      {0x00F8, 0x024F, kLatin},       {0x1E00, 0x1EFF, kLatin},
    {0x2C60, 0x2C7F, kLatin},      {0xA720, 0xA7FF, kLatin},       {0xFF21, 0xFF3A, kLatin},
    {0xFF41, 0xFF5A, kLatin},      {0x0370, 0x03FF, kGreek},       {0x1F00, 0x1FFF, kGreek},
    {0x0400, 0x052F, kCyrillic},   {0x1C80, 0x1C8F, kCyrillic},    {0x2DE0, 0x2DFF, kCyrillic},
    {0xA640, 0xA69F, kCyrillic},   {0x0591, 0x05F4, kHebrew},      {0x0620, 0x064A, kArabic},
    {0x066E, 0x06D3, kArabic},     {0x0750, 0x077F, kArabic},      {0x08A0, 0x08FF, kArabic},
    {0xFB50, 0xFDFF, kArabic},     {0xFE70, 0xFEFF, kArabic},      {0x0900, 0x0963, kDevanagari},
    {0x0971, 0x097F, kDevanagari}, {0x0E01, 0x0E4E, kThai},        {0x1100, 0x11FF, kHangul},
    {0x3130, 0x318F, kHangul},     {0xAC00, 0xD7AF, kHangul},      {0x3041, 0x309F, kHiragana},
    {0x30A1, 0x30FF, kKatakana},   {0x31F0, 0x31FF, kKatakana},    {0x2E80, 0x2FDF, kHan},
    {0x3005, 0x3007, kHan},        {0x3021, 0x3029, kHan},         {0x3400, 0x4DBF, kHan},
    {0x4E00, 0x9FFF, kHan},        {0xF900, 0xFAFF, kHan},         {0x20000, 0x2FA1F, kHan},
};

std::uint32_t script_of(char32_t code) {
  for (const Range& range : kRanges) {
    if (code >= range.first && code <= range.last) return range.script;
  }
  return 0;
}

std::optional<std::uint32_t> script_mask(std::string_view name) {
  if (name == "latin") return kLatin;
  if (name == "han") return kHan;
  if (name == "cyrillic") return kCyrillic;
  if (name == "greek") return kGreek;
  if (name == "arabic") return kArabic;
  if (name == "hebrew") return kHebrew;
  if (name == "devanagari") return kDevanagari;
  if (name == "thai") return kThai;
  if (name == "hangul") return kHangul;
  if (name == "hiragana") return kHiragana;
  if (name == "katakana") return kKatakana;
  if (name == "kana") return kHiragana | kKatakana;
  return std::nullopt;
}

// Decodes the code point at text[i], advancing i; invalid bytes decode as 0 and advance by one.
char32_t next_code_point(std::string_view text, std::size_t& i) {
  const auto byte = [&](std::size_t k) { return static_cast<unsigned char>(text[k]); };
  const unsigned char lead = byte(i);
  int length = lead < 0x80 ? 1 : (lead >> 5) == 0x6 ? 2 : (lead >> 4) == 0xE ? 3 : (lead >> 3) == 0x1E ? 4 : 0;
  if (length == 0 || i + static_cast<std::size_t>(length) > text.size()) {
    ++i;
    return 0;
  }
  char32_t code = length == 1 ? lead : lead & (0x7F >> length);
  for (int k = 1; k < length; ++k) {
    if ((byte(i + k) & 0xC0) != 0x80) {
      ++i;
      return 0;
    }
    code = (code << 6) | (byte(i + k) & 0x3F);
  }
  i += static_cast<std::size_t>(length);
  return code;
}

}  // namespace

std::optional<double> script_ratio(std::string_view text, std::string_view script) {
  const std::optional<std::uint32_t> wanted = script_mask(script);
  if (!wanted) return std::nullopt;
  std::size_t letters = 0, in_script = 0;
  for (std::size_t i = 0; i < text.size();) {
    const std::uint32_t found = script_of(next_code_point(text, i));
    if (found == 0) continue;
    ++letters;
    if (found & *wanted) ++in_script;
  }
  return letters == 0 ? 0.0 : static_cast<double>(in_script) / static_cast<double>(letters);
}

std::uint32_t script_mask_of(char32_t code) { return script_of(code); }

std::optional<std::uint32_t> script_mask_named(std::string_view script) { return script_mask(script); }

}  // namespace grpo::rewards
