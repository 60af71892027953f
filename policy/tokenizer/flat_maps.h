#pragma once
// Open-addressing hash maps for the two lookups on the encoding hot path. Both are built once at load
// and then only read, so they need no erase and no rehash-on-insert subtleties; lookups never allocate
// (std::unordered_map<std::string, ...> would need a std::string key for every probe in C++17).
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "policy/tokenizer/huge_page_allocator.h"

namespace grpo {

// (left id, right id) -> (merge rank, merged id): the BPE merge table.
class PairMergeMap {
 public:
  struct Merge {
    int32_t rank = -1;  // -1: no such merge
    int32_t merged_id = -1;
  };

  void reserve(size_t count);
  // Inserts or replaces: when a merges list repeats a pair, the later entry wins, as when `tokenizers`
  // collects the list into its HashMap.
  void insert_or_assign(int32_t left, int32_t right, Merge merge);
  Merge find(int32_t left, int32_t right) const {
    if (slots_.empty()) return {};
    const uint64_t key = pack(left, right);
    for (size_t i = slot_of(key);; i = (i + 1) & mask_) {
      const Slot& s = slots_[i];
      if (s.merge.rank < 0) return {};
      if (s.key == key) return s.merge;
    }
  }
  size_t size() const { return size_; }

 private:
  struct Slot {
    uint64_t key = 0;
    Merge merge;
  };
  static uint64_t pack(int32_t a, int32_t b) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
  }
  size_t slot_of(uint64_t key) const { return static_cast<size_t>((key * 0x9E3779B97F4A7C15ull) >> shift_); }
  void grow();

  LargeVector<Slot> slots_;
  size_t mask_ = 0;
  int shift_ = 64;
  size_t size_ = 0;
};

// byte string -> id, for vocab lookups by raw bytes. Keys are copied into one arena.
class StringIdMap {
 public:
  void reserve(size_t count);
  // Returns false when the key is already present (the existing id is kept).
  bool insert(std::string_view key, int32_t id);
  // Returns the id, or -1 when absent.
  int32_t find(std::string_view key) const;
  size_t size() const { return size_; }

 private:
  struct Slot {  // 16 bytes: the tables of a 150 k vocabulary are touched once per load, page by page
    uint32_t hash = 0;  // the low bits of hash_of, which also pick the slot
    uint32_t offset = 0;
    uint32_t length = 0;
    int32_t id = -1;  // -1: empty
  };
  static uint64_t hash_of(std::string_view key);
  void grow();

  std::string arena_;
  LargeVector<Slot> slots_;
  size_t mask_ = 0;
  size_t size_ = 0;
};

}  // namespace grpo
