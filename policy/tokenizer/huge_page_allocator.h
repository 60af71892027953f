#pragma once
// An allocator for the large tables a tokenizer builds once per load (hash-map slots, per-id strings,
// the cache file's bytes). Fresh memory costs a page fault per 4 KiB page on first touch, and loading
// Qwen3's tables touches ~45 MB: about 11 000 faults, half the time of a load from the cache on a
// virtual machine. Blocks of 2 MiB and more are therefore 2 MiB-aligned and advised for transparent
// huge pages (madvise), which the kernel then maps 2 MiB at a time. Where transparent huge pages are
// off (or always on) the advice changes nothing; smaller blocks come from operator new as usual.
#include <cstddef>
#include <cstdlib>
#include <new>
#include <vector>

#include <sys/mman.h>

namespace grpo {

template <typename T>
struct HugePageAllocator {
  using value_type = T;
  static constexpr size_t kHugePage = size_t{2} << 20;

  HugePageAllocator() = default;
  template <typename U>
  HugePageAllocator(const HugePageAllocator<U>&) {}

  T* allocate(size_t n) {
    const size_t bytes = n * sizeof(T);
    if (bytes < kHugePage) return static_cast<T*>(::operator new(bytes));
    const size_t rounded = (bytes + kHugePage - 1) / kHugePage * kHugePage;
    void* p = std::aligned_alloc(kHugePage, rounded);
    if (!p) throw std::bad_alloc();
#ifdef MADV_HUGEPAGE
    madvise(p, rounded, MADV_HUGEPAGE);  // advice only: failure leaves ordinary pages
#endif
    return static_cast<T*>(p);
  }
  void deallocate(T* p, size_t n) {
    if (n * sizeof(T) < kHugePage) {
      ::operator delete(p);
    } else {
      std::free(p);
    }
  }
  template <typename U>
  bool operator==(const HugePageAllocator<U>&) const { return true; }
  template <typename U>
  bool operator!=(const HugePageAllocator<U>&) const { return false; }
};

// A vector for tables of a load's size.
template <typename T>
using LargeVector = std::vector<T, HugePageAllocator<T>>;

}  // namespace grpo
