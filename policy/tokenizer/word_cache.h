#pragma once
// A fixed-size, direct-mapped cache of word -> ids. Natural text repeats a small set of words, so most
// BPE work is a hash and a memcmp. Entries are one cache line and hold short words and short results
// inline: the cache never allocates after construction. Not thread-safe: the owner serialises access.
#include <cstdint>
#include <cstring>
#include <functional>
#include <string_view>
#include <vector>

namespace grpo {

class WordCache {
 public:
  static constexpr size_t kMaxWordBytes = 30;
  static constexpr size_t kMaxIds = 7;

  explicit WordCache(size_t entries_log2 = 16) : entries_(size_t{1} << entries_log2), mask_(entries_.size() - 1) {}

  // On a hit, appends the cached ids to out and returns true.
  bool lookup(std::string_view word, std::vector<int32_t>& out) const {
    if (word.size() > kMaxWordBytes) return false;
    const uint32_t h = hash_of(word);
    const Entry& e = entries_[h & mask_];
    if (e.hash != h || e.word_length != word.size() || e.id_count == 0) return false;
    if (std::memcmp(e.word, word.data(), word.size()) != 0) return false;
    out.insert(out.end(), e.ids, e.ids + e.id_count);
    return true;
  }

  // Remembers word -> ids (a no-op when either is too long to store inline).
  void store(std::string_view word, const int32_t* ids, size_t count) {
    if (word.size() > kMaxWordBytes || count == 0 || count > kMaxIds) return;
    const uint32_t h = hash_of(word);
    Entry& e = entries_[h & mask_];
    e.hash = h;
    e.word_length = static_cast<uint8_t>(word.size());
    e.id_count = static_cast<uint8_t>(count);
    std::memcpy(e.word, word.data(), word.size());
    std::memcpy(e.ids, ids, count * sizeof(int32_t));
  }

 private:
  struct Entry {
    uint32_t hash = 0;
    uint8_t word_length = 0;
    uint8_t id_count = 0;  // 0: empty
    char word[kMaxWordBytes];
    int32_t ids[kMaxIds];
  };
  static_assert(sizeof(Entry) == 64, "one entry per cache line");

  static uint32_t hash_of(std::string_view word) {
    const size_t h = std::hash<std::string_view>{}(word);
    return static_cast<uint32_t>(h ^ (h >> 32));
  }

  std::vector<Entry> entries_;
  size_t mask_;
};

}  // namespace grpo
