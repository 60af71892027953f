#include "policy/cpu_allocator.h"

#include <cstdlib>
#include <mutex>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace grpo {

void retain_freed_cpu_memory() {
#if defined(__GLIBC__)
  static std::once_flag once;
  std::call_once(once, [] {
    for (const char* tuned : {"MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_", "GLIBC_TUNABLES"})
      if (std::getenv(tuned)) return;
    // 32 MiB is glibc's largest mmap threshold; larger blocks (a training batch's logits) stay mmap-ed.
    constexpr int kHeapBlockLimit = 32 << 20;
    constexpr int kKeptTop = 1 << 30;
    mallopt(M_MMAP_THRESHOLD, kHeapBlockLimit);
    mallopt(M_TRIM_THRESHOLD, kKeptTop);
  });
#endif
}

}  // namespace grpo
