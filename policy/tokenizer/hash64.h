#pragma once
// XXH64 (Yann Collet's xxHash, 64-bit variant, seed 0): a fast non-cryptographic hash of a byte
// string, used to key the table cache of a tokenizer.json to the file's exact bytes. It reads 32 bytes
// per step in four independent lanes, so hashing an 11 MB file costs about a millisecond.
#include <cstdint>
#include <string_view>

namespace grpo {

uint64_t hash64(std::string_view bytes);

}  // namespace grpo
