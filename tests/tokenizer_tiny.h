#pragma once
// A tiny byte-level BPE tokenizer.json built in the test, so that merge order, pre-tokenizer
// behaviours and error paths can be checked against hand-worked ids. Ids 0..255 are the bytes
// (id == byte value); extra tokens follow in the order given.
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "policy/tokenizer/byte_level.h"

namespace grpo::test {

inline nlohmann::json tiny_byte_level_json(const std::vector<std::string>& extra_tokens,
                                           const std::vector<std::pair<std::string, std::string>>& merges) {
  nlohmann::json vocab = nlohmann::json::object();
  for (int b = 0; b < 256; ++b) vocab[byte_level::byte_to_token_text(static_cast<unsigned char>(b))] = b;
  int next = 256;
  for (const std::string& t : extra_tokens) vocab[t] = next++;
  nlohmann::json merge_list = nlohmann::json::array();
  for (const auto& [l, r] : merges) merge_list.push_back({l, r});
  return {
      {"version", "1.0"},
      {"added_tokens", nlohmann::json::array()},
      {"normalizer", nullptr},
      {"pre_tokenizer", {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", false}, {"use_regex", false}}},
      {"post_processor", nullptr},
      {"decoder", {{"type", "ByteLevel"}}},
      {"model", {{"type", "BPE"}, {"dropout", nullptr}, {"unk_token", nullptr}, {"fuse_unk", false},
                 {"byte_fallback", false}, {"ignore_merges", false}, {"vocab", vocab}, {"merges", merge_list}}},
  };
}

}  // namespace grpo::test
