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

struct Tokenizer::Impl {
  std::string tokenizer_json;  // the source texts, written back by save()
  std::string config_json;     // tokenizer_config.json, empty when there is none
  std::string origin;          // file name for messages

  Normalizer normalizer;
  PreTokenizer pre_tokenizer;
  std::optional<BpeModel> model;
  AddedTokenMatcher added_tokens;

  // Per id: the token as written, the bytes it decodes to, whether it is a special added token.
  std::vector<std::string> token_text;
  std::vector<std::string> token_bytes;
  std::vector<char> special;
  StringIdMap id_by_token_text;  // added tokens first, then the vocabulary (as HF resolves names)

  int32_t bos_id = -1, eos_id = -1, pad_id = -1;

  // Word cache: whoever takes the lock uses it for a whole encode(); concurrent callers go without.
  mutable std::mutex cache_mutex;
  mutable WordCache cache;
};

// Parses tokenizer.json (and optionally tokenizer_config.json) into Impl. Defined in tokenizer_json.cpp.
std::shared_ptr<Tokenizer::Impl> parse_tokenizer_json(const std::string& tokenizer_json, const std::string& config_json,
                                                      const std::string& origin);

}  // namespace grpo
