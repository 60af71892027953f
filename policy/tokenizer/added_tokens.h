#pragma once
// Added tokens (special tokens like <|im_end|>, and extra words like <think>) are found in the text
// before anything else and are never split. Matching is leftmost-longest over raw bytes, as Hugging
// Face tokenizers does with its Aho-Corasick automaton.
#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace grpo {

class AddedTokenMatcher {
 public:
  void add(const std::string& content, int32_t id, bool special);
  bool empty() const { return nodes_.size() <= 1; }

  struct Match {
    size_t begin = 0, end = 0;
    int32_t id = -1;  // -1: no match
  };
  // The leftmost-longest added token in text at or after start. With include_special false, tokens
  // marked special are not matched (their text is then encoded like any other text).
  Match find(std::string_view text, size_t start, bool include_special) const;

 private:
  struct Node {
    std::vector<std::pair<unsigned char, int32_t>> children;  // byte -> node index
    int32_t id = -1;
    bool special = false;
  };
  int32_t child(int32_t node, unsigned char byte) const;
  size_t longest_at(std::string_view text, size_t at, bool include_special, int32_t& id) const;

  std::vector<Node> nodes_{Node{}};
  std::array<bool, 256> is_first_byte_{};
};

}  // namespace grpo
