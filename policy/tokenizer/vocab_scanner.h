#pragma once
// The fast path of reading tokenizer.json: /model/vocab and /model/merges hold almost all of the file
// (150 k tokens and as many merges in Qwen3's 11 MB), and building a full JSON DOM of them costs most of
// a second. This scanner reads exactly those two values with a purpose-built parser and hands back the
// rest of the file, with them replaced by {} and [], for the ordinary JSON reader (tokenizer_json.cpp).
//
// It never reports errors: whenever the file is not a plain well-formed instance of the expected shape
// (an id that is not a non-negative 32-bit integer, a merge that is not "a b" or ["a", "b"], ill-formed
// UTF-8, a lone surrogate escape, a repeated "model", "vocab" or "merges" key, a syntax error, ...) it
// returns nullopt, and the caller reads the whole file with the JSON library instead, which names the
// problem. A token written twice in the vocabulary is returned twice: the caller, which builds the
// token map anyway, detects it and takes the JSON library's reading (it keeps the last). So for every
// file it accepts it gives what the JSON library gives, in file order (tests/tokenizer_vocab_scanner.cpp
// holds it to that).
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace grpo {

struct ScannedVocabAndMerges {
  std::string rest_json;                                    // the file with vocab -> {} and merges -> []
  std::vector<std::pair<std::string, int32_t>> vocab;       // (token as written, id) in file order
  std::vector<std::pair<std::string, std::string>> merges;  // (left, right) in rank order
};

std::optional<ScannedVocabAndMerges> scan_vocab_and_merges(std::string_view tokenizer_json);

}  // namespace grpo
