#include "policy/tokenizer/added_tokens.h"

namespace grpo {

int32_t AddedTokenMatcher::child(int32_t node, unsigned char byte) const {
  for (const auto& [b, index] : nodes_[node].children) {
    if (b == byte) return index;
  }
  return -1;
}

void AddedTokenMatcher::add(const std::string& content, int32_t id, bool special) {
  if (content.empty()) return;
  int32_t node = 0;
  for (unsigned char c : content) {
    int32_t next = child(node, c);
    if (next < 0) {
      next = static_cast<int32_t>(nodes_.size());
      nodes_[node].children.emplace_back(c, next);
      nodes_.emplace_back();
    }
    node = next;
  }
  nodes_[node].id = id;
  nodes_[node].special = special;
  is_first_byte_[static_cast<unsigned char>(content[0])] = true;
}

size_t AddedTokenMatcher::longest_at(std::string_view text, size_t at, bool include_special, int32_t& id) const {
  size_t best_length = 0;
  int32_t node = 0;
  for (size_t i = at; i < text.size(); ++i) {
    node = child(node, static_cast<unsigned char>(text[i]));
    if (node < 0) break;
    const Node& n = nodes_[node];
    if (n.id >= 0 && (include_special || !n.special)) {
      best_length = i + 1 - at;
      id = n.id;
    }
  }
  return best_length;
}

AddedTokenMatcher::Match AddedTokenMatcher::find(std::string_view text, size_t start, bool include_special) const {
  if (empty()) return {};
  for (size_t at = start; at < text.size(); ++at) {
    if (!is_first_byte_[static_cast<unsigned char>(text[at])]) continue;
    int32_t id = -1;
    const size_t length = longest_at(text, at, include_special, id);
    if (length > 0) return {at, at + length, id};
  }
  return {};
}

}  // namespace grpo
