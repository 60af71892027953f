// Pre-tokenizer splits on hand-worked examples: the five Hugging Face split behaviours, sequences of
// steps, and the Qwen/Llama-3 regexes on the cases that distinguish them.
#include <doctest/doctest.h>

#include "policy/tokenizer/pre_tokenizer.h"
#include "policy/tokenizer/tokenizer.h"
#include "tests/tokenizer_tiny.h"

namespace {

using grpo::PreTokenizer;
using grpo::Regex;
using B = PreTokenizer::Behavior;

std::vector<std::string> split(const PreTokenizer& p, const std::string& text) {
  std::vector<PreTokenizer::Range> ranges;
  p.split(text, ranges);
  std::vector<std::string> pieces;
  for (const auto& r : ranges) pieces.push_back(text.substr(r.begin, r.end - r.begin));
  return pieces;
}

PreTokenizer one_step(const std::string& pattern, B behavior, bool literal = false) {
  PreTokenizer p;
  p.add_step(Regex(pattern, literal, "/test"), behavior);
  return p;
}

using Pieces = std::vector<std::string>;

// Llama-3's pattern, as in its tokenizer.json.
const char* const kLlama3 =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

}  // namespace

TEST_CASE("pre-tokenizer: the five split behaviours") {
  const std::string text = "a--b-c";
  CHECK(split(one_step("-", B::kIsolated, true), text) == Pieces{"a", "-", "-", "b", "-", "c"});
  CHECK(split(one_step("-", B::kRemoved, true), text) == Pieces{"a", "b", "c"});
  // Two matches in a row: only the first glues to its neighbour (as in `tokenizers`).
  CHECK(split(one_step("-", B::kMergedWithPrevious, true), text) == Pieces{"a-", "-", "b-", "c"});
  CHECK(split(one_step("-", B::kMergedWithNext, true), text) == Pieces{"a", "-", "-b", "-c"});
  CHECK(split(one_step("-", B::kContiguous, true), text) == Pieces{"a", "--", "b", "-", "c"});
}

TEST_CASE("pre-tokenizer: steps apply to the pieces of the previous step") {
  PreTokenizer p;
  p.add_step(Regex("\\p{N}{1,3}", false, "/0"), B::kIsolated);
  p.add_step(Regex(" ", true, "/1"), B::kRemoved);
  CHECK(split(p, "x 1234567 y") == Pieces{"x", "123", "456", "7", "y"});
}

TEST_CASE("pre-tokenizer: Llama-3 regex on contractions, digits, spaces and newlines") {
  const PreTokenizer p = one_step(kLlama3, B::kIsolated);
  CHECK(split(p, "I'LL don't") == Pieces{"I", "'LL", " don", "'t"});
  CHECK(split(p, "x=12345") == Pieces{"x", "=", "123", "45"});
  // A run of spaces leaves its last space to the next word; newlines gather the spaces before them.
  CHECK(split(p, "a   b") == Pieces{"a", "  ", " b"});
  CHECK(split(p, "a  \n\nb") == Pieces{"a", "  \n\n", "b"});
  CHECK(split(p, "end   ") == Pieces{"end", "   "});
  CHECK(split(p, "\xE4\xBD\xA0\xE5\xA5\xBD!") == Pieces{"\xE4\xBD\xA0\xE5\xA5\xBD", "!"});  // 你好!
}

TEST_CASE("pre-tokenizer: Digits step of tokenizer.json isolates digits or digit runs") {
  // Merges 1+2 -> "12" (id 256) and a+1 -> "a1" (id 257): which ones apply shows where the splits are.
  const auto make = [](const nlohmann::json* digits) {
    auto doc = grpo::test::tiny_byte_level_json({"12", "a1"}, {{"1", "2"}, {"a", "1"}});
    nlohmann::json steps = nlohmann::json::array();
    if (digits) steps.push_back(*digits);
    steps.push_back({{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", false}});
    doc["pre_tokenizer"] = {{"type", "Sequence"}, {"pretokenizers", steps}};
    return grpo::Tokenizer::from_json(doc.dump());
  };
  const nlohmann::json individual = {{"type", "Digits"}, {"individual_digits", true}};
  const nlohmann::json runs = {{"type", "Digits"}, {"individual_digits", false}};
  CHECK(make(nullptr).encode("a12") == std::vector<int32_t>{'a', 256});
  CHECK(make(&individual).encode("a12") == std::vector<int32_t>{'a', '1', '2'});
  CHECK(make(&runs).encode("a12") == std::vector<int32_t>{'a', 256});
  CHECK(make(&runs).encode("12a1") == std::vector<int32_t>{256, 'a', '1'});
}

TEST_CASE("pre-tokenizer: ByteLevel with use_regex splits with GPT-2's pattern first") {
  // Merges d+' (rank 0, id 256) and '+s (rank 1, id 257): on the whole word "d's" the first wins; GPT-2's
  // pattern cuts "d" from "'s" before BPE, so only the second can apply.
  const auto make = [](bool use_regex) {
    auto doc = grpo::test::tiny_byte_level_json({"d'", "'s"}, {{"d", "'"}, {"'", "s"}});
    doc["pre_tokenizer"]["use_regex"] = use_regex;
    return grpo::Tokenizer::from_json(doc.dump());
  };
  CHECK(make(false).encode("d's") == std::vector<int32_t>{256, 's'});
  CHECK(make(true).encode("d's") == std::vector<int32_t>{'d', 257});
}
