#pragma once
// A binary cache of what loading a tokenizer.json builds from its vocabulary and merges, so that the
// next load of the same file skips parsing them (Qwen3: 11 MB of JSON). Tables only ever come from the
// file whose bytes they were built from:
//  - the cache is keyed by the XXH64 hash and the size of the tokenizer.json bytes, and by a format
//    version; an edited file (one merge, one character) has another key, so stale tables are never used;
//  - a cache file that is truncated, corrupt (its payload hash does not match), of another format or
//    another file's is ignored and rewritten, never trusted; ids in it are checked before use.
//
// Where: beside the file, "<tokenizer.json>.grpo-cache", written atomically (a temporary file in the
// same folder, then rename). When that folder is not writable: $XDG_CACHE_HOME/grpo/ (or
// ~/.cache/grpo/), named by the hash. GRPO_TOKENIZER_CACHE=0 turns the cache off (nothing is read or
// written), e.g. for read-only deployments. Files under 1 MiB are not cached: they load in milliseconds.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "policy/tokenizer/bpe_model.h"

namespace grpo {

// What the cache holds: the tokenizer.json text without its vocabulary and merges (vocab_scanner.h),
// which is parsed as usual on every load, and the vocabulary and merges resolved.
struct CachedTables {
  std::string rest_json;
  BpeTables tables;
};

// The cache file's bytes, and back. decode_table_cache returns nullopt unless bytes are a complete,
// uncorrupted cache of this format made from a file with this hash and size.
std::string encode_table_cache(uint64_t source_hash, uint64_t source_size, const CachedTables& tables);
std::optional<CachedTables> decode_table_cache(std::string_view bytes, uint64_t source_hash, uint64_t source_size);

class TableCache {
 public:
  static constexpr uint32_t kFormatVersion = 1;
  static constexpr size_t kMinimumFileBytes = size_t{1} << 20;

  // False when GRPO_TOKENIZER_CACHE is "0".
  static bool enabled();

  // The cache of the file at tokenizer_json_path whose bytes are tokenizer_json (hashed here).
  TableCache(const std::string& tokenizer_json_path, std::string_view tokenizer_json);

  // Whether this file is worth caching (enabled() and at least kMinimumFileBytes).
  bool applies() const { return applies_; }
  // The tables from beside the file, else from the fallback folder; nullopt when neither holds a valid
  // cache of these bytes.
  std::optional<CachedTables> load() const;
  // Writes the cache beside the file, or in the fallback folder when that fails. Returns the path
  // written, or "" when neither could be (the load goes on without a cache).
  std::string store(const CachedTables& tables) const;

  const std::string& beside_path() const { return beside_path_; }
  // $XDG_CACHE_HOME/grpo/tokenizer-<hash>.grpo-cache, ~/.cache/grpo/... without it; "" without HOME.
  const std::string& fallback_path() const { return fallback_path_; }

 private:
  bool applies_ = false;
  uint64_t source_hash_ = 0;
  uint64_t source_size_ = 0;
  std::string beside_path_;
  std::string fallback_path_;
};

}  // namespace grpo
