// StreamingDecoder: text comes out as soon as it is complete UTF-8, never a broken character.
#include <doctest/doctest.h>

#include "policy/tokenizer/streaming_decoder.h"
#include "policy/tokenizer/utf8.h"
#include "tests/tokenizer_test_files.h"
#include "tests/tokenizer_tiny.h"

namespace {

using grpo::StreamingDecoder;
using grpo::Tokenizer;

// No merges: one id per byte, id == byte value, so every character arrives in pieces.
Tokenizer bytes_tokenizer() { return Tokenizer::from_json(grpo::test::tiny_byte_level_json({}, {}).dump()); }

int32_t id(unsigned char byte) { return byte; }

}  // namespace

TEST_CASE("streaming: a character split over several ids comes out whole, with the last byte") {
  const Tokenizer t = bytes_tokenizer();
  StreamingDecoder d(t);
  CHECK(d.push('a') == "a");
  CHECK(d.push(id(0xF0)) == "");  // 😀 = F0 9F 98 80
  CHECK(d.push(id(0x9F)) == "");
  CHECK(d.push(id(0x98)) == "");
  CHECK(d.pending_bytes() == 3);
  CHECK(d.push(id(0x80)) == "\xF0\x9F\x98\x80");
  CHECK(d.push(id(0xC3)) == "");  // é = C3 A9
  CHECK(d.push(id(0xA9)) == "\xC3\xA9");
  CHECK(d.finish() == "");
}

TEST_CASE("streaming: bytes that cannot become UTF-8 come out as U+FFFD, never as broken text") {
  const Tokenizer t = bytes_tokenizer();
  StreamingDecoder d(t);
  CHECK(d.push(id(0xFF)) == "\xEF\xBF\xBD");  // never valid anywhere
  CHECK(d.push(id(0xE4)) == "");              // could start 你 (E4 BD A0)...
  CHECK(d.push(id(0xBD)) == "");
  CHECK(d.push('A') == "\xEF\xBF\xBD" "A");  // ...but didn't: one U+FFFD for the two bytes
  CHECK(d.push(id(0x80)) == "\xEF\xBF\xBD");  // stray continuation byte
  CHECK(d.push(id(0xE4)) == "");
  CHECK(d.finish() == "\xEF\xBF\xBD");  // cut off by the end of generation
  CHECK(d.pending_bytes() == 0);
}

TEST_CASE("streaming: Qwen3 ids of emoji and Chinese, fed one by one, give the text back piece by piece") {
  const Tokenizer* t = grpo::test::shared_tokenizer("qwen3");
  if (!t) return;
  const std::string text = "Family: \xF0\x9F\x91\xA8\xE2\x80\x8D\xF0\x9F\x91\xA9\xE2\x80\x8D\xF0\x9F\x91\xA7 "
                           "\xE4\xBD\xA0\xE5\xA5\xBD, \xF0\x9F\x9A\x80!";  // Family: 👨‍👩‍👧 你好, 🚀!
  const auto ids = t->encode(text + "<|im_end|>");
  StreamingDecoder d(*t);
  std::string joined;
  int held_back = 0;
  for (int32_t i : ids) {
    const std::string piece = d.push(i);
    CHECK(grpo::utf8::valid_prefix_length(piece) == piece.size());
    held_back += piece.empty() ? 1 : 0;
    joined += piece;
  }
  joined += d.finish();
  CHECK(joined == text);  // <|im_end|> is special: skipped
  CHECK(held_back >= 2);  // the emoji really were split across ids (otherwise this test shows nothing)
}
