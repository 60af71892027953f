// UTF-8 validation on the cases of RFC 3629 and Unicode table 3-7 (overlong forms, surrogates, range).
#include <doctest/doctest.h>

#include "policy/tokenizer/utf8.h"

using namespace grpo::utf8;

TEST_CASE("utf8: well-formed sequences and the ill-formed ones that look similar") {
  CHECK(valid_sequence_length("a") == 1);
  CHECK(valid_sequence_length("\xC3\xA9") == 2);           // é
  CHECK(valid_sequence_length("\xE4\xBD\xA0") == 3);       // 你
  CHECK(valid_sequence_length("\xF0\x9F\x98\x80") == 4);   // 😀
  CHECK(valid_sequence_length("\xF4\x8F\xBF\xBF") == 4);   // U+10FFFF
  CHECK(valid_sequence_length("\xC0\xAF") == 0);           // overlong '/'
  CHECK(valid_sequence_length("\xE0\x80\xAF") == 0);       // overlong
  CHECK(valid_sequence_length("\xED\xA0\x80") == 0);       // surrogate U+D800
  CHECK(valid_sequence_length("\xF4\x90\x80\x80") == 0);   // U+110000
  CHECK(valid_sequence_length("\x80") == 0);               // stray continuation
  CHECK(valid_sequence_length("\xE4\xBD") == 0);           // truncated
  CHECK(valid_sequence_length("\xFF") == 0);
}

TEST_CASE("utf8: prefixes, incomplete tails and replacement spans") {
  CHECK(valid_prefix_length("ab\xC3\xA9" "c\xFF" "d") == 5);
  CHECK(incomplete_tail_length("ab\xE4\xBD") == 2);
  CHECK(incomplete_tail_length("ab\xF0") == 1);
  CHECK(incomplete_tail_length("ab\xC3\xA9") == 0);  // complete
  CHECK(incomplete_tail_length("ab\xED\xA0") == 0);  // can only become a surrogate: never valid
  CHECK(incomplete_tail_length("ab\x80") == 0);
  CHECK(invalid_span_length("\xE4\xBD" "A") == 2);
  CHECK(invalid_span_length("\xED\xA0\x80") == 1);
  CHECK(invalid_span_length("\xFF\xFF") == 1);
  std::string s;
  append(s, 0x1F600);
  append(s, 0xE9);
  CHECK(s == "\xF0\x9F\x98\x80\xC3\xA9");
}
