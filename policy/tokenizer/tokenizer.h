#pragma once
// Tokenizer: Hugging Face tokenizer.json files (byte-level BPE as in Qwen2/2.5/3, DeepSeek-V3/R1 and
// Llama-3; character-level BPE for synthetic tasks), giving exactly the ids of the `tokenizers`
// library. Pipeline of encode(): added tokens are cut out of the raw text first and never split; the
// rest is split into runs of valid UTF-8 and stray bytes; each run is normalized (NFC...), split into
// words by the pre-tokenizer regexes, and each word is merged by BPE (results cached per word).
//
// Differences from the `tokenizers` library, all deliberate:
//  - encode() never adds BOS/EOS (the post-processor is not applied: as add_special_tokens=False).
//    Prompt templates (prompt_template.h) place BOS and role markers explicitly.
//  - Input is bytes, not str: a byte that is not part of valid UTF-8 becomes its own byte token, so
//    any byte string encodes and decode(encode(x)) == x for every x (up to the normalizer: NFC for Qwen).
//  - allow_special=false treats the text of *special* added tokens as ordinary text (for untrusted
//    text such as dataset prompts); non-special added tokens (Qwen3's <think>) still match.
//
// A Tokenizer is immutable after loading and cheap to copy (shared state); encode() may be called
// from several threads at once.
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "policy/tokenizer/tokenizer_error.h"

namespace grpo {

class Tokenizer {
 public:
  // Loads tokenizer.json (path to the file, or to a directory holding it) and, when present next to
  // it, tokenizer_config.json for the bos/eos/pad roles. Throws TokenizerError naming the file and
  // the JSON path of anything malformed or unsupported (e.g. "/model/byte_fallback").
  static Tokenizer from_file(const std::string& path);
  // The same from in-memory JSON texts; origin names them in error messages. config_json may be empty.
  static Tokenizer from_json(const std::string& tokenizer_json, const std::string& config_json = "",
                             const std::string& origin = "tokenizer.json");

  // A character-level tokenizer for synthetic tasks: ids 0.. are special_tokens in order, then one id
  // per distinct UTF-8 character of alphabet. Stored as a BPE model with no merges, so the Hugging Face
  // libraries load what save() writes. Characters outside the alphabet encode as "<unk>", which is
  // added as a special token when not among special_tokens. Roles: "<bos>", "<eos>" and "<pad>" are
  // picked up by name when present.
  static Tokenizer make_char_level(std::string_view alphabet, const std::vector<std::string>& special_tokens);

  // Token ids of text. Never throws for any byte string on a byte-level tokenizer.
  std::vector<int32_t> encode(std::string_view text, bool allow_special = true) const;
  // The bytes the ids stand for, concatenated (which may be incomplete UTF-8 when the ids end inside a
  // character: use StreamingDecoder for text shown while generating). Throws TokenizerError for an id
  // outside [0, vocab_size()).
  std::string decode(const std::vector<int32_t>& ids, bool skip_special = false) const;

  // Id of a token written as in tokenizer.json ("Ġthe", "<|im_end|>"), or -1 when there is none.
  int32_t token_to_id(std::string_view token) const;
  // The token as written in tokenizer.json; empty for an id no token uses. Throws for out-of-range ids.
  const std::string& id_to_token(int32_t id) const;
  // The bytes one token decodes to (what decode() concatenates).
  const std::string& token_bytes(int32_t id) const;
  bool is_special(int32_t id) const;

  // One more than the largest id of the vocabulary and the added tokens: the embedding rows needed.
  int32_t vocab_size() const;
  // Ids of the roles from tokenizer_config.json (or make_char_level), -1 when the file names none.
  int32_t bos_id() const;
  int32_t eos_id() const;
  int32_t pad_id() const;

  // Writes tokenizer.json to path and, when there is one, tokenizer_config.json beside it (as loaded,
  // or the roles of make_char_level), so the directory loads here and in transformers alike.
  void save(const std::string& path) const;

  struct Impl;

 private:
  explicit Tokenizer(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}
  std::shared_ptr<Impl> impl_;
};

}  // namespace grpo
