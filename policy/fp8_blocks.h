#pragma once
// FP8 block quantization as DeepSeek-V3 and R1 are published: each weight of a linear layer stored as one
// byte in the E4M3 format (float8_e4m3fn: 1 sign, 4 exponent bits with bias 7, 3 mantissa bits; no
// infinities; the two all-ones codes are NaN; largest magnitude 448; exponent 0 is subnormal,
// 2^-6 * m/8), beside a float32 `<name>_scale_inv` holding one factor per block of
// weight_block_size = [rows, cols] (128 x 128 in DeepSeek's config.json quantization_config); the blocks
// at the right and bottom edges are smaller when the shape is not a multiple of the block. The real
// value is the decoded byte times its block's factor. No LibTorch here: checkpoint.cpp makes tensors.
#include <cstdint>

namespace grpo {

// The value of one E4M3 byte (exact in float; NaN for 0x7F and 0xFF).
float e4m3_to_float(uint8_t code);

// out[r * cols + c] = e4m3(q[r * cols + c]) * scale_inv[(r / block_rows) * scale_cols + c / block_cols],
// scale_cols = ceil(cols / block_cols): a row-major [rows, cols] weight dequantized into float32.
void dequantize_fp8_blocks(const uint8_t* q, int64_t rows, int64_t cols, const float* scale_inv, int64_t block_rows,
                           int64_t block_cols, float* out);

}  // namespace grpo
