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

// The vocabulary and merges of tokenizer.json resolved to ids: everything a BpeModel is built from, in
// a form that is cheap to store (the table cache keeps it, table_cache.h) and to turn into hash maps.
struct BpeTables {
  struct Merge {
    int32_t left, right, merged;
  };
  // Room kept after the vocabulary in token_texts and token_bytes for the added tokens whose ids follow
  // it (Qwen3: 26, Llama-3: 256, DeepSeek-V3: 815), so that the id tables can take these vectors over
  // whole instead of copying 150 k strings into new ones.
  static constexpr size_t kSpareIds = 1024;

  LargeVector<std::string> token_texts;  // the vocabulary as written, in file order
  std::vector<int32_t> token_ids;        // their ids
  // The raw bytes each token stands for in GPT-2's byte alphabet (what the ByteLevel decoder gives), or
  // the text itself when it has characters outside that alphabet ("<|im_end|>"): in_byte_alphabet 0.
  LargeVector<std::string> token_bytes;
  std::vector<uint8_t> in_byte_alphabet;
  std::vector<Merge> merges;  // in rank order
  // Tokens written more than once in the vocabulary (only a text scan can see them; a JSON object keeps
  // the last). Not stored in the cache: tables with duplicates are never cached.
  size_t duplicate_tokens = 0;

  // Resolves the merges by token text. Throws TokenizerError naming json_path + "/merges/N" when a
  // merge refers to a token that is not in vocab.
  static BpeTables build(std::vector<std::pair<std::string, int32_t>> vocab,
                         const std::vector<std::pair<std::string, std::string>>& merges, const std::string& json_path);
};

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

  // From the resolved vocabulary and merges (BpeTables::build, or the table cache).
  BpeModel(const BpeTables& tables, Options options);

  // Appends the ids of one word to out. Throws TokenizerError for a character with no id (only
  // possible without byte_level and without an unk token).
  void encode_word(std::string_view word, std::vector<int32_t>& out) const;

  const Options& options() const { return options_; }
  // Id of a vocabulary token written as in tokenizer.json, or -1.
  int32_t token_id(std::string_view text) const { return ids_by_text_.find(text); }

 private:
  void initial_symbols(std::string_view word, std::vector<int32_t>& ids) const;
  static constexpr size_t kShortWord = 16;       // words up to this many symbols use merge_short
  void merge_short(std::vector<int32_t>& ids) const;  // O(n^2) scan, fastest for short words
  void merge_all(std::vector<int32_t>& ids) const;    // O(n log n) heap, for long words

  Options options_;
  StringIdMap ids_by_text_;   // token text -> id (vocabulary as written)
  StringIdMap ids_by_bytes_;  // raw bytes -> id (byte-level with ignore_merges only: its one use)
  int32_t byte_ids_[256];     // byte -> id of its single-byte token, -1 when absent
  PairMergeMap merges_;
};

}  // namespace grpo
