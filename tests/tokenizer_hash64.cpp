// hash64 is XXH64 with seed 0: the published test vectors of xxHash, and the property the table cache
// relies on: changing any one byte, or the length, changes the hash.
#include <doctest/doctest.h>

#include <set>
#include <string>

#include "policy/tokenizer/hash64.h"

TEST_CASE("hash64: gives XXH64's published values") {
  // From the xxHash documentation and its Python binding's README (seed 0). The last input is longer
  // than 32 bytes, so it goes through the four-lane loop and every tail step.
  CHECK(grpo::hash64("") == 0xEF46DB3751D8E999ull);
  CHECK(grpo::hash64("a") == 0xD24EC4F1A98C6E5Bull);
  CHECK(grpo::hash64("abc") == 0x44BC2CF5AD770999ull);
  CHECK(grpo::hash64("Nobody inspects the spammish repetition") == 0xFBCEA83C8A378BF1ull);
}

TEST_CASE("hash64: changes with every byte and with the length") {
  std::string text;
  for (int i = 0; i < 300; ++i) text += static_cast<char>('a' + (i * 7) % 26);
  const uint64_t base = grpo::hash64(text);
  for (size_t i = 0; i < text.size(); ++i) {
    std::string edited = text;
    edited[i] = static_cast<char>(edited[i] ^ 0x01);  // the smallest edit: one bit of one byte
    CAPTURE(i);
    CHECK(grpo::hash64(edited) != base);
  }
  std::set<uint64_t> prefixes;
  for (size_t n = 0; n <= 100; ++n) prefixes.insert(grpo::hash64(std::string_view(text).substr(0, n)));
  CHECK(prefixes.size() == 101);
  CHECK(grpo::hash64(std::string(64, '\0')) != grpo::hash64(std::string(65, '\0')));  // zeros still count
}
