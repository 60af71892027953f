#pragma once
// How the process's C allocator treats the blocks LibTorch frees on the CPU. Every op of a forward
// allocates its output and frees its inputs' temporaries; with glibc's defaults a freed block at the
// top of the heap beyond 128 KiB is handed back to the kernel (trimmed), and blocks above a threshold
// that starts at 128 KiB are mmap-ed and unmapped one by one, so the next op's output is fresh memory
// whose first touch page-faults. In a dense 100M decode step at batch 64 that made the elementwise ops
// (mul, silu, add on [64, 768..2048]) 10x slower than on reused memory: about a sixth of the step.
// No header outside policy/ needs this: CausalLM applies it when a model is made.
namespace grpo {

// Once per process, on glibc: blocks up to 32 MiB come from the heap and freed heap memory is kept
// (up to 1 GiB at the top) for reuse. Leaves the allocator alone when the user tuned it through the
// environment (MALLOC_MMAP_THRESHOLD_, MALLOC_TRIM_THRESHOLD_, MALLOC_TOP_PAD_, GLIBC_TUNABLES).
void retain_freed_cpu_memory();

}  // namespace grpo
