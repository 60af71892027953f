#pragma once
// The BPE model of tokenizer.json: a vocabulary and ranked merges, applied to one pre-token ("word")
// at a time exactly as Hugging Face tokenizers' BPE does (lowest rank first, leftmost on ties).
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "policy/tokenizer/flat_maps.h"

namespace grpo {

class BpeModel {
 public:
  struct Options {
    // Words are raw bytes and the vocabulary is written in GPT-2's byte alphabet (a ByteLevel
    // pre-tokenizer is present). Otherwise words are UTF-8 text split into characters.
    bool byte_level = true;
    // A word that is itself in the vocabulary becomes that one token without merging (Llama-3).
    bool ignore_merges = false;
    int32_t unk_id = -1;  // -1: no unk token; an unknown character is an error
  };

  // vocab: (token text as written in tokenizer.json, id). merges: pairs of token texts, in rank order.
  // Throws TokenizerError naming json_path when a merge refers to a token that is not in vocab.
  BpeModel(const std::vector<std::pair<std::string, int32_t>>& vocab,
           const std::vector<std::pair<std::string, std::string>>& merges, Options options,
           const std::string& json_path);

  // Appends the ids of one word to out. Throws TokenizerError for a character with no id (only
  // possible without byte_level and without an unk token).
  void encode_word(std::string_view word, std::vector<int32_t>& out) const;

  const Options& options() const { return options_; }

 private:
  void initial_symbols(std::string_view word, std::vector<int32_t>& ids) const;
  static constexpr size_t kShortWord = 16;       // words up to this many symbols use merge_short
  void merge_short(std::vector<int32_t>& ids) const;  // O(n^2) scan, fastest for short words
  void merge_all(std::vector<int32_t>& ids) const;    // O(n log n) heap, for long words

  Options options_;
  StringIdMap ids_by_text_;   // token text -> id (vocabulary as written)
  StringIdMap ids_by_bytes_;  // raw bytes -> id (byte-level only)
  int32_t byte_ids_[256];     // byte -> id of its single-byte token, -1 when absent
  PairMergeMap merges_;
};

}  // namespace grpo
