// Pathological inputs for the pre-tokenizer regexes: megabyte-long runs of one character class. Each
// must encode (no regex stack or backtracking limit hit) and decode back to itself.
#include <doctest/doctest.h>

#include "policy/tokenizer/tokenizer.h"
#include "tests/tokenizer_tiny.h"

namespace {

// Qwen2/2.5/3's Split pattern, as in their tokenizer.json.
const char* const kQwenPattern =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

grpo::Tokenizer qwen_like() {
  auto doc = grpo::test::tiny_byte_level_json({}, {});
  doc["pre_tokenizer"] = {
      {"type", "Sequence"},
      {"pretokenizers",
       {{{"type", "Split"}, {"pattern", {{"Regex", kQwenPattern}}}, {"behavior", "Isolated"}, {"invert", false}},
        {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", false}, {"use_regex", false}}}}};
  return grpo::Tokenizer::from_json(doc.dump());
}

std::string repeat(const std::string& unit, size_t bytes) {
  std::string s;
  while (s.size() < bytes) s += unit;
  return s;
}

}  // namespace

TEST_CASE("long inputs: megabyte runs of spaces, newlines, letters, digits, symbols and CJK") {
  const grpo::Tokenizer t = qwen_like();
  constexpr size_t kBytes = 1 << 20;
  for (const std::string unit : {" ", "\n", " \n", "\t ", "a", "7", "!", "\xE4\xBD\xA0", " a", "\xF0\x9F\x98\x80"}) {
    const std::string text = repeat(unit, kBytes) + "end";
    CAPTURE(unit);
    const auto ids = t.encode(text);
    CHECK(ids.size() == text.size());  // no merges: one id per byte
    CHECK(t.decode(ids) == text);
  }
}
