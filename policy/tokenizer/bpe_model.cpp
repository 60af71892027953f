#include "policy/tokenizer/bpe_model.h"

#include <algorithm>
#include <climits>

#include "policy/tokenizer/byte_level.h"
#include "policy/tokenizer/tokenizer_error.h"
#include "policy/tokenizer/utf8.h"

namespace grpo {

BpeTables BpeTables::build(std::vector<std::pair<std::string, int32_t>> vocab,
                           const std::vector<std::pair<std::string, std::string>>& merges, const std::string& json_path) {
  BpeTables t;
  t.token_texts.reserve(vocab.size() + kSpareIds);
  t.token_ids.reserve(vocab.size());
  t.token_bytes.reserve(vocab.size() + kSpareIds);
  t.in_byte_alphabet.reserve(vocab.size());
  StringIdMap ids_by_text;
  ids_by_text.reserve(vocab.size());
  for (auto& [text, id] : vocab) {
    if (!ids_by_text.insert(text, id)) ++t.duplicate_tokens;
    std::optional<std::string> bytes = byte_level::token_text_to_bytes(text);
    t.in_byte_alphabet.push_back(bytes.has_value());
    t.token_bytes.push_back(bytes ? std::move(*bytes) : text);
    t.token_texts.push_back(std::move(text));
    t.token_ids.push_back(id);
  }
  t.merges.reserve(merges.size());
  std::string joined;
  for (size_t rank = 0; rank < merges.size(); ++rank) {
    const auto& [left, right] = merges[rank];
    const int32_t left_id = ids_by_text.find(left);
    const int32_t right_id = ids_by_text.find(right);
    joined.assign(left).append(right);
    const int32_t merged_id = ids_by_text.find(joined);
    if (left_id < 0 || right_id < 0 || merged_id < 0) {
      throw TokenizerError(json_path + "/merges/" + std::to_string(rank) + ": merge \"" + left + " " + right +
                           "\" uses a token that is not in /model/vocab");
    }
    t.merges.push_back({left_id, right_id, merged_id});
  }
  return t;
}

BpeModel::BpeModel(const BpeTables& tables, Options options) : options_(options) {
  const size_t n = tables.token_texts.size();
  std::fill(std::begin(byte_ids_), std::end(byte_ids_), -1);
  ids_by_text_.reserve(n);
  for (size_t i = 0; i < n; ++i) ids_by_text_.insert(tables.token_texts[i], tables.token_ids[i]);
  if (options_.byte_level && options_.ignore_merges) {
    ids_by_bytes_.reserve(n);
    for (size_t i = 0; i < n; ++i) {
      if (tables.in_byte_alphabet[i]) ids_by_bytes_.insert(tables.token_bytes[i], tables.token_ids[i]);
    }
  }
  if (options_.byte_level) {
    for (int b = 0; b < 256; ++b) byte_ids_[b] = ids_by_text_.find(byte_level::byte_to_token_text(static_cast<unsigned char>(b)));
  }
  merges_.reserve(tables.merges.size());
  for (size_t rank = 0; rank < tables.merges.size(); ++rank) {
    const BpeTables::Merge& m = tables.merges[rank];
    merges_.insert_or_assign(m.left, m.right, {static_cast<int32_t>(rank), m.merged});
  }
}

void BpeModel::initial_symbols(std::string_view word, std::vector<int32_t>& ids) const {
  if (options_.byte_level) {
    for (unsigned char b : word) {
      const int32_t id = byte_ids_[b] >= 0 ? byte_ids_[b] : options_.unk_id;
      if (id < 0) throw TokenizerError("byte " + std::to_string(b) + " has no token and the model has no unk_token");
      ids.push_back(id);
    }
    return;
  }
  size_t i = 0;
  while (i < word.size()) {
    const size_t n = std::max<size_t>(1, utf8::valid_sequence_length(word.substr(i)));
    const int32_t id = ids_by_text_.find(word.substr(i, n));
    if (id >= 0) {
      ids.push_back(id);
    } else if (options_.unk_id >= 0) {
      ids.push_back(options_.unk_id);
    } else {
      throw TokenizerError("character \"" + std::string(word.substr(i, n)) +
                           "\" is not in the vocabulary and the model has no unk_token");
    }
    i += n;
  }
}

// Short words (almost all of them): scan for the lowest-ranked pair, leftmost among equals, merge,
// repeat. This is the same order as the heap below (a candidate's pair can only change by growing its
// span, so a stale candidate never passes for a live one) without the heap's bookkeeping.
void BpeModel::merge_short(std::vector<int32_t>& ids) const {
  int32_t ranks[kShortWord];
  int32_t merged[kShortWord];
  size_t n = ids.size();
  for (size_t i = 0; i + 1 < n; ++i) {
    const PairMergeMap::Merge m = merges_.find(ids[i], ids[i + 1]);
    ranks[i] = m.rank < 0 ? INT32_MAX : m.rank;
    merged[i] = m.merged_id;
  }
  while (n > 1) {
    size_t best = 0;
    for (size_t i = 1; i + 1 < n; ++i) {
      if (ranks[i] < ranks[best]) best = i;
    }
    if (ranks[best] == INT32_MAX) break;
    // Symbol best+1 disappears: symbols and the pairs after it move one place left.
    ids[best] = merged[best];
    ids.erase(ids.begin() + static_cast<std::ptrdiff_t>(best) + 1);
    for (size_t i = best + 1; i + 2 < n; ++i) {
      ranks[i] = ranks[i + 1];
      merged[i] = merged[i + 1];
    }
    --n;
    const auto refresh = [&](size_t i) {
      const PairMergeMap::Merge m = merges_.find(ids[i], ids[i + 1]);
      ranks[i] = m.rank < 0 ? INT32_MAX : m.rank;
      merged[i] = m.merged_id;
    };
    if (best > 0) refresh(best - 1);
    if (best + 1 < n) refresh(best);
  }
}

// The merge loop of Hugging Face's Word::merge_all: a heap of candidate merges ordered by (rank,
// position), symbols in a linked list, stale candidates skipped when popped. O(n log n) per word, so a
// megabyte-long run of spaces is as safe as a short word.
void BpeModel::merge_all(std::vector<int32_t>& ids) const {
  struct Candidate {
    int32_t rank, pos, merged_id;
    bool operator>(const Candidate& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
  };
  thread_local std::vector<int32_t> prev, next;
  thread_local std::vector<Candidate> heap;
  const int32_t n = static_cast<int32_t>(ids.size());
  prev.resize(n);
  next.resize(n);
  heap.clear();
  for (int32_t i = 0; i < n; ++i) {
    prev[i] = i - 1;
    next[i] = i + 1 < n ? i + 1 : -1;
  }
  const auto push = [&](int32_t pos) {
    const int32_t right = next[pos];
    if (right < 0) return;
    const PairMergeMap::Merge m = merges_.find(ids[pos], ids[right]);
    if (m.rank < 0) return;
    heap.push_back({m.rank, pos, m.merged_id});
    std::push_heap(heap.begin(), heap.end(), std::greater<>());
  };
  for (int32_t i = 0; i + 1 < n; ++i) push(i);

  constexpr int32_t kRemoved = -1;
  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end(), std::greater<>());
    const Candidate top = heap.back();
    heap.pop_back();
    const int32_t pos = top.pos;
    if (ids[pos] == kRemoved || next[pos] < 0) continue;
    const int32_t right = next[pos];
    if (merges_.find(ids[pos], ids[right]).merged_id != top.merged_id) continue;  // stale candidate
    ids[pos] = top.merged_id;
    ids[right] = kRemoved;
    next[pos] = next[right];
    if (next[pos] >= 0) prev[next[pos]] = pos;
    if (prev[pos] >= 0) push(prev[pos]);
    push(pos);
  }
  ids.erase(std::remove(ids.begin(), ids.end(), kRemoved), ids.end());
}

void BpeModel::encode_word(std::string_view word, std::vector<int32_t>& out) const {
  if (word.empty()) return;
  if (options_.ignore_merges) {
    const int32_t id = options_.byte_level ? ids_by_bytes_.find(word) : ids_by_text_.find(word);
    if (id >= 0) {
      out.push_back(id);
      return;
    }
  }
  thread_local std::vector<int32_t> ids;
  ids.clear();
  initial_symbols(word, ids);
  if (ids.size() <= 1) {
  } else if (ids.size() <= kShortWord) {
    merge_short(ids);
  } else {
    merge_all(ids);
  }
  out.insert(out.end(), ids.begin(), ids.end());
}

}  // namespace grpo
