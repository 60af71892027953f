// A malformed or unsupported tokenizer.json is rejected with an error that names the JSON path of the
// problem; never silently accepted with different ids.
#include <doctest/doctest.h>

#include <cstdio>
#include <fstream>

#include "policy/tokenizer/tokenizer.h"
#include "tests/tokenizer_tiny.h"

namespace {

using grpo::Tokenizer;
using grpo::TokenizerError;
using nlohmann::json;

// The error message of loading doc (empty when it loads).
std::string load_error(const json& doc, const std::string& config = "") {
  try {
    Tokenizer::from_json(doc.dump(), config, "model/tokenizer.json");
  } catch (const TokenizerError& e) {
    return e.what();
  }
  return "";
}

json base() { return grpo::test::tiny_byte_level_json({"ab"}, {{"a", "b"}}); }

}  // namespace

TEST_CASE("errors: the tiny base file loads (so each failure below is due to its one change)") {
  CHECK(load_error(base()) == "");
}

TEST_CASE("errors: unsupported model flags name their path") {
  json doc = base();
  doc["model"]["byte_fallback"] = true;
  CHECK(load_error(doc).find("model/tokenizer.json: /model/byte_fallback: true is not supported") == 0);
  doc = base();
  doc["model"]["dropout"] = 0.1;
  CHECK(load_error(doc).find("/model/dropout") != std::string::npos);
  doc = base();
  doc["model"]["continuing_subword_prefix"] = "##";
  CHECK(load_error(doc).find("/model/continuing_subword_prefix") != std::string::npos);
  doc = base();
  doc["model"]["some_new_flag"] = true;
  CHECK(load_error(doc).find("/model/some_new_flag: unknown setting") != std::string::npos);
  doc = base();
  doc["model"]["type"] = "Unigram";
  CHECK(load_error(doc).find("/model/type: model \"Unigram\" is not supported") != std::string::npos);
}

TEST_CASE("errors: unsupported components name their path") {
  json doc = base();
  doc["normalizer"] = {{"type", "Sequence"}, {"normalizers", {{{"type", "NFC"}}, {{"type", "Lowercase"}}}}};
  CHECK(load_error(doc).find("/normalizer/normalizers/1/type: normalizer \"Lowercase\"") != std::string::npos);
  doc = base();
  doc["pre_tokenizer"] = {{"type", "Sequence"},
                          {"pretokenizers",
                           {{{"type", "Split"}, {"pattern", {{"Regex", "x"}}}, {"behavior", "Isolated"}, {"invert", true}}}}};
  CHECK(load_error(doc).find("/pre_tokenizer/pretokenizers/0/invert: true is not supported") != std::string::npos);
  doc = base();
  doc["pre_tokenizer"] = {{"type", "Metaspace"}};
  CHECK(load_error(doc).find("/pre_tokenizer/type: pre-tokenizer \"Metaspace\"") != std::string::npos);
  doc = base();
  doc["pre_tokenizer"]["add_prefix_space"] = true;
  CHECK(load_error(doc).find("/pre_tokenizer/add_prefix_space: true is not supported") != std::string::npos);
  doc = base();
  doc["decoder"] = {{"type", "WordPiece"}};
  CHECK(load_error(doc).find("/decoder/type: decoder \"WordPiece\"") != std::string::npos);
  doc = base();
  doc["decoder"] = nullptr;
  CHECK(load_error(doc).find("/decoder: a decoder is required") != std::string::npos);
  doc = base();
  doc["added_tokens"] = {{{"id", 300}, {"content", "<x>"}, {"lstrip", true}}};
  CHECK(load_error(doc).find("/added_tokens/0/lstrip: true is not supported") != std::string::npos);
}

TEST_CASE("errors: malformed content names its path") {
  json doc = base();
  doc["model"]["merges"] = {"a b", "a c d"};
  CHECK(load_error(doc).find("/model/merges/1: expected two tokens") != std::string::npos);
  doc = base();
  doc["model"]["merges"] = json::array({json::array({"ab", "zz"})});
  CHECK(load_error(doc).find("/model/merges/0: merge \"ab zz\" uses a token that is not in /model/vocab") !=
        std::string::npos);
  doc = base();
  doc["model"]["vocab"]["xyz"] = -4;
  CHECK(load_error(doc).find("/model/vocab/xyz: expected a non-negative integer id") != std::string::npos);
  doc = base();
  doc["pre_tokenizer"] = {{"type", "Split"}, {"pattern", {{"Regex", "(unclosed"}}}, {"behavior", "Isolated"}};
  CHECK(load_error(doc).find("/pre_tokenizer/pattern/Regex: regex does not compile") != std::string::npos);
  doc = base();
  doc["pre_tokenizer"] = {{"type", "Split"}, {"pattern", {{"Regex", "x"}}}, {"behavior", "Sideways"}};
  CHECK(load_error(doc).find("/pre_tokenizer/behavior: unknown split behavior \"Sideways\"") != std::string::npos);
  doc = base();
  doc.erase("model");
  CHECK(load_error(doc).find("/model: missing") != std::string::npos);
}

TEST_CASE("errors: bad JSON, missing files, bad roles and bad ids") {
  CHECK_THROWS_WITH_AS(Tokenizer::from_json("{\"model\": [", "", "x/tokenizer.json"),
                       doctest::Contains("x/tokenizer.json: /: not valid JSON"), TokenizerError);
  CHECK_THROWS_WITH_AS(Tokenizer::from_file("/nonexistent/dir/tokenizer.json"),
                       doctest::Contains("/nonexistent/dir/tokenizer.json: cannot read"), TokenizerError);
  CHECK(load_error(base(), "{\"bos_token\": \"<s>\"}") ==
        "model/tokenizer_config.json: /bos_token: token \"<s>\" is not in the tokenizer");
  CHECK(load_error(base(), "{\"eos_token\": {\"content\": \"ab\"}, \"pad_token\": null}") == "");
  const Tokenizer t = Tokenizer::from_json(base().dump(), "{\"eos_token\": {\"content\": \"ab\"}}");
  CHECK(t.eos_id() == 256);
  CHECK(t.bos_id() == -1);
  CHECK_THROWS_WITH_AS(t.decode({1, 257}), doctest::Contains("token id 257 is outside [0, 257)"), TokenizerError);
  CHECK_THROWS_AS(t.id_to_token(-1), TokenizerError);
}
