#pragma once
// The state behind Tokenizer (internal to policy/tokenizer/): built by tokenizer_json.cpp, used by
// tokenizer.cpp and streaming_decoder.cpp.
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "policy/tokenizer/added_tokens.h"
#include "policy/tokenizer/bpe_model.h"
#include "policy/tokenizer/flat_maps.h"
#include "policy/tokenizer/normalizer.h"
#include "policy/tokenizer/pre_tokenizer.h"
#include "policy/tokenizer/tokenizer.h"
#include "policy/tokenizer/word_cache.h"

namespace grpo {

// The text of a tokenizer.json: read straight into memory advised for huge pages (11 MB for Qwen3).
using JsonText = LargeVector<char>;
inline std::string_view view_of(const JsonText& text) { return {text.data(), text.size()}; }

struct Tokenizer::Impl {
  JsonText tokenizer_json;   // the source texts, written back by save()
  std::string config_json;   // tokenizer_config.json, empty when there is none
  std::string origin;        // file name for messages

  Normalizer normalizer;
  PreTokenizer pre_tokenizer;
  std::optional<BpeModel> model;
  AddedTokenMatcher added_tokens;

  // Per id: the token as written, the bytes it decodes to, whether it is a special added token.
  LargeVector<std::string> token_text;
  LargeVector<std::string> token_bytes;
  std::vector<char> special;
  // Names: added tokens take precedence over the vocabulary (model->token_id), as in `tokenizers`.
  StringIdMap added_token_ids;
  int32_t find_token_id(std::string_view text) const {
    const int32_t id = added_token_ids.find(text);
    return id >= 0 ? id : model->token_id(text);
  }

  int32_t bos_id = -1, eos_id = -1, pad_id = -1;

  // Word cache: whoever takes the lock uses it for a whole encode(); concurrent callers go without.
  mutable std::mutex cache_mutex;
  mutable WordCache cache;
};

class TableCache;


// How parse_tokenizer_json reads /model/vocab and /model/merges.
enum class TableSource {
  kFast,       // the table cache when one is given and holds this file, else the scanner of
               // vocab_scanner.h, else (a file it declines) the JSON library
  kReference,  // the JSON library's DOM of the whole file: the path the others shortcut
};

// Parses tokenizer.json (and optionally tokenizer_config.json) into Impl. With a cache (from_file's,
// table_cache.h), a file read by the scanner is cached and a cached file is not scanned. Defined in
// tokenizer_json.cpp.
std::shared_ptr<Tokenizer::Impl> parse_tokenizer_json(JsonText tokenizer_json, const std::string& config_json,
                                                      const std::string& origin,
                                                      TableSource source = TableSource::kFast,
                                                      const TableCache* cache = nullptr);

}  // namespace grpo
