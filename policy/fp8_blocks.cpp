#include "policy/fp8_blocks.h"

#include <array>
#include <cmath>
#include <limits>

namespace grpo {
namespace {

std::array<float, 256> e4m3_table() {
  std::array<float, 256> table{};
  for (int code = 0; code < 256; ++code) {
    const int sign = code >> 7, exponent = (code >> 3) & 0xF, mantissa = code & 0x7;
    float magnitude;
    if (exponent == 0xF && mantissa == 0x7) {
      magnitude = std::numeric_limits<float>::quiet_NaN();
    } else if (exponent == 0) {
      magnitude = std::ldexp(static_cast<float>(mantissa) / 8.0f, -6);  // subnormal
    } else {
      magnitude = std::ldexp(1.0f + static_cast<float>(mantissa) / 8.0f, exponent - 7);
    }
    table[code] = sign ? -magnitude : magnitude;
  }
  return table;
}

const std::array<float, 256>& table() {
  static const std::array<float, 256> t = e4m3_table();
  return t;
}

}  // namespace

float e4m3_to_float(uint8_t code) { return table()[code]; }

void dequantize_fp8_blocks(const uint8_t* q, int64_t rows, int64_t cols, const float* scale_inv, int64_t block_rows,
                           int64_t block_cols, float* out) {
  const std::array<float, 256>& decode = table();
  const int64_t scale_cols = (cols + block_cols - 1) / block_cols;
  for (int64_t r = 0; r < rows; ++r) {
    const float* scales = scale_inv + (r / block_rows) * scale_cols;
    const uint8_t* in = q + r * cols;
    float* o = out + r * cols;
    for (int64_t c = 0; c < cols; ++c) o[c] = decode[in[c]] * scales[c / block_cols];
  }
}

}  // namespace grpo
