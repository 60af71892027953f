// The character-level tokenizer of synthetic tasks: ids, unknown characters, roles, and a saved file
// that stays identical to the committed one (which the Hugging Face reference loads: see the
// char_level conformance case).
#include "tests/tokenizer_test_files.h"

#include <sys/stat.h>

namespace {

using grpo::Tokenizer;

const char* const kAlphabet = "0123456789+-*/=()<>.,:? \nabcdefghijklmnopqrstuvwxyz";

Tokenizer arithmetic_tokenizer() { return Tokenizer::make_char_level(kAlphabet, {"<pad>", "<bos>", "<eos>", "<unk>"}); }

}  // namespace

TEST_CASE("char level: specials first, then one id per character in alphabet order") {
  const Tokenizer t = arithmetic_tokenizer();
  CHECK(t.vocab_size() == 4 + 51);  // 10 digits, 15 symbols (with space and newline), 26 letters
  CHECK(t.pad_id() == 0);
  CHECK(t.bos_id() == 1);
  CHECK(t.eos_id() == 2);
  CHECK(t.token_to_id("<unk>") == 3);
  CHECK(t.token_to_id("0") == 4);
  CHECK(t.token_to_id("z") == 54);
  // "12+3=15": digits are 4 + value, '+' is the 11th character (id 14), '=' the 15th (id 18).
  CHECK(t.encode("12+3=15") == std::vector<int32_t>{5, 6, 14, 7, 18, 5, 9});
  CHECK(t.encode("<bos>1<eos>") == std::vector<int32_t>{1, 5, 2});
  // Unknown characters (uppercase, non-ASCII) become <unk>; special text can be kept literal.
  CHECK(t.encode("Aé1") == std::vector<int32_t>{3, 3, 5});
  CHECK(t.encode("<eos>", /*allow_special=*/false) == std::vector<int32_t>{t.token_to_id("<"), t.token_to_id("e"),
                                                                        t.token_to_id("o"), t.token_to_id("s"),
                                                                        t.token_to_id(">")});
  CHECK(t.decode({1, 5, 6, 2}) == "<bos>12<eos>");
  CHECK(t.decode({1, 5, 6, 2}, /*skip_special=*/true) == "12");
}

TEST_CASE("char level: save writes the committed tokenizer.json and it loads back identically") {
  const Tokenizer t = arithmetic_tokenizer();
  const std::string dir = std::string(GRPO_BINARY_DIR) + "/tokenizer_char_level";
  mkdir(dir.c_str(), 0755);
  t.save(dir + "/tokenizer.json");
  // If this fails after an intended change: copy these two files to tests/fixtures/tokenizer/char_level/
  // and run scripts/make_tokenizer_fixtures so the reference ids follow.
  CHECK(grpo::test::read_text_file(dir + "/tokenizer.json") ==
        grpo::test::read_text_file(grpo::test::tokenizer_fixture("char_level/tokenizer.json")));
  CHECK(grpo::test::read_text_file(dir + "/tokenizer_config.json") ==
        grpo::test::read_text_file(grpo::test::tokenizer_fixture("char_level/tokenizer_config.json")));
  const Tokenizer loaded = Tokenizer::from_file(dir);
  CHECK(loaded.vocab_size() == t.vocab_size());
  CHECK(loaded.eos_id() == 2);
  CHECK(loaded.encode("(7*8)=56\n") == t.encode("(7*8)=56\n"));
}
