// The real tokenizer.json files of Qwen3, DeepSeek-V3 and Llama-3 (and our character-level one) give
// exactly the ids of the Hugging Face reference implementation on a varied corpus, and decoding gives
// the input bytes back. Golden ids: scripts/make_tokenizer_fixtures.
#include "tests/tokenizer_test_files.h"

namespace {

using grpo::Tokenizer;

void check_against_golden(const std::string& name) {
  const Tokenizer* tokenizer = grpo::test::shared_tokenizer(name);
  if (!tokenizer) return;
  const auto golden = grpo::test::load_golden(name);
  const auto corpus = grpo::test::load_corpus();
  REQUIRE(golden.size() == corpus.size());
  for (const auto& c : corpus) {
    CAPTURE(c.name);
    const auto& expected = golden.at(c.name);
    CHECK(tokenizer->encode(c.bytes, /*allow_special=*/true) == expected.ids);
    CHECK(tokenizer->encode(c.bytes, /*allow_special=*/false) == expected.ids_without_special);
  }
}

// Qwen's normalizer (NFC) changes text that is not already in NFC; the one such corpus case comes back
// in NFC, written out here by hand.
const char* const kUnicodeNormalizationNfc =
    u8"decomposed \u00e9 and composed \u00e9; angstrom \u00c5 vs \u00c5; ohm \u03a9; ligature \ufb01; "
    u8"hangul \uac01 vs \uac01; \u00e4\u0301 stacked.";

void check_round_trip(const std::string& name, bool normalizes_to_nfc) {
  const Tokenizer* tokenizer = grpo::test::shared_tokenizer(name);
  if (!tokenizer) return;
  for (const auto& c : grpo::test::load_corpus()) {
    CAPTURE(c.name);
    const bool changes = normalizes_to_nfc && c.name == "unicode_normalization";
    const std::string expected = changes ? kUnicodeNormalizationNfc : c.bytes;
    CHECK(tokenizer->decode(tokenizer->encode(c.bytes, true)) == expected);
    CHECK(tokenizer->decode(tokenizer->encode(c.bytes, false)) == expected);
  }
}

}  // namespace

TEST_CASE("conformance qwen3: ids equal the reference on the corpus") { check_against_golden("qwen3"); }
TEST_CASE("conformance deepseek_v3: ids equal the reference on the corpus") { check_against_golden("deepseek_v3"); }
TEST_CASE("conformance llama3: ids equal the reference on the corpus") { check_against_golden("llama3"); }
TEST_CASE("conformance char_level: ids equal the reference on the corpus") { check_against_golden("char_level"); }

TEST_CASE("round trip qwen3: decode(encode(x)) == NFC(x) on the corpus") { check_round_trip("qwen3", true); }
TEST_CASE("round trip deepseek_v3: decode(encode(x)) == x on the corpus") { check_round_trip("deepseek_v3", false); }
TEST_CASE("round trip llama3: decode(encode(x)) == x on the corpus") { check_round_trip("llama3", false); }
