#include "policy/tokenizer/flat_maps.h"

#include <cstring>

namespace grpo {

namespace {
// Tables are kept at most half full: probes stay short and "empty slot" always terminates a search.
size_t capacity_for(size_t count) {
  size_t capacity = 16;
  while (capacity < 2 * count) capacity *= 2;
  return capacity;
}
}  // namespace

void PairMergeMap::reserve(size_t count) {
  if (capacity_for(count) <= slots_.size()) return;
  LargeVector<Slot> old = std::move(slots_);
  slots_.assign(capacity_for(count), Slot{});
  mask_ = slots_.size() - 1;
  shift_ = 64 - __builtin_ctzll(slots_.size());
  size_ = 0;
  for (const Slot& s : old) {
    if (s.merge.rank >= 0) insert_or_assign(static_cast<int32_t>(s.key >> 32), static_cast<int32_t>(s.key & 0xFFFFFFFFu), s.merge);
  }
}

void PairMergeMap::grow() { reserve(size_ + 1); }

void PairMergeMap::insert_or_assign(int32_t left, int32_t right, Merge merge) {
  grow();
  const uint64_t key = pack(left, right);
  for (size_t i = slot_of(key);; i = (i + 1) & mask_) {
    Slot& s = slots_[i];
    if (s.merge.rank < 0) {
      s.key = key;
      s.merge = merge;
      ++size_;
      return;
    }
    if (s.key == key) {
      s.merge = merge;
      return;
    }
  }
}

uint64_t StringIdMap::hash_of(std::string_view key) {
  // FNV-1a, then a final mix so that the low bits (the slot index) depend on every byte.
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : key) h = (h ^ c) * 0x100000001b3ull;
  h ^= h >> 29;
  h *= 0xbf58476d1ce4e5b9ull;
  return h ^ (h >> 32);
}

void StringIdMap::reserve(size_t count) {
  if (capacity_for(count) <= slots_.size()) return;
  LargeVector<Slot> old = std::move(slots_);
  slots_.assign(capacity_for(count), Slot{});
  mask_ = slots_.size() - 1;
  for (const Slot& s : old) {
    if (s.id < 0) continue;
    size_t i = s.hash & mask_;
    while (slots_[i].id >= 0) i = (i + 1) & mask_;
    slots_[i] = s;
  }
}

void StringIdMap::grow() { reserve(size_ + 1); }

bool StringIdMap::insert(std::string_view key, int32_t id) {
  grow();
  const auto h = static_cast<uint32_t>(hash_of(key));
  for (size_t i = h & mask_;; i = (i + 1) & mask_) {
    Slot& s = slots_[i];
    if (s.id < 0) {
      s = Slot{h, static_cast<uint32_t>(arena_.size()), static_cast<uint32_t>(key.size()), id};
      arena_.append(key.data(), key.size());
      ++size_;
      return true;
    }
    if (s.hash == h && s.length == key.size() && std::memcmp(arena_.data() + s.offset, key.data(), key.size()) == 0) {
      return false;
    }
  }
}

int32_t StringIdMap::find(std::string_view key) const {
  if (slots_.empty()) return -1;
  const auto h = static_cast<uint32_t>(hash_of(key));
  for (size_t i = h & mask_;; i = (i + 1) & mask_) {
    const Slot& s = slots_[i];
    if (s.id < 0) return -1;
    if (s.hash == h && s.length == key.size() && std::memcmp(arena_.data() + s.offset, key.data(), key.size()) == 0) {
      return s.id;
    }
  }
}

}  // namespace grpo
