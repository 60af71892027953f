#include "policy/rotary_embedding.h"

#include <cmath>

namespace grpo {
namespace {

constexpr double kPi = 3.14159265358979323846;

// YaRN: the dimension index whose wavelength completes `rotations` turns over the original context.
double yarn_correction_dim(double rotations, int64_t dim, double base, double max_positions) {
  return (dim * std::log(max_positions / (rotations * 2 * kPi))) / (2 * std::log(base));
}

}  // namespace

torch::Tensor rope_inverse_frequencies(const RopeConfig& rope, int64_t dim) {
  auto f64 = torch::TensorOptions().dtype(torch::kDouble);
  torch::Tensor exponents = torch::arange(0, dim, 2, f64) / static_cast<double>(dim);
  torch::Tensor inv_freq = 1.0 / torch::pow(rope.theta, exponents);  // [dim/2]
  switch (rope.scaling) {
    case RopeScaling::None: return inv_freq;
    case RopeScaling::Linear: return inv_freq / rope.factor;
    case RopeScaling::Yarn: {
      // Dimensions rotating fast (many turns over the original context) keep their frequency;
      // slow ones are interpolated by `factor`; a linear ramp blends the band between.
      const double max_pos = static_cast<double>(rope.original_max_position_embeddings);
      double low = std::floor(yarn_correction_dim(rope.beta_fast, dim, rope.theta, max_pos));
      double high = std::ceil(yarn_correction_dim(rope.beta_slow, dim, rope.theta, max_pos));
      low = std::max(low, 0.0);
      high = std::min(high, static_cast<double>(dim - 1));
      if (low == high) high += 0.001;  // avoid a zero-width ramp
      torch::Tensor ramp = ((torch::arange(dim / 2, f64) - low) / (high - low)).clamp(0.0, 1.0);
      torch::Tensor extrapolation = 1.0 - ramp;  // weight of the original frequency
      return (inv_freq / rope.factor) * (1.0 - extrapolation) + inv_freq * extrapolation;
    }
    case RopeScaling::Llama3: {
      const double old_len = static_cast<double>(rope.original_max_position_embeddings);
      const double low_wavelen = old_len / rope.low_freq_factor;
      const double high_wavelen = old_len / rope.high_freq_factor;
      torch::Tensor wavelen = 2 * kPi / inv_freq;
      torch::Tensor scaled = torch::where(wavelen > low_wavelen, inv_freq / rope.factor, inv_freq);
      torch::Tensor smooth = (old_len / wavelen - rope.low_freq_factor) / (rope.high_freq_factor - rope.low_freq_factor);
      torch::Tensor smoothed = (1 - smooth) * scaled / rope.factor + smooth * scaled;
      torch::Tensor medium = (wavelen >= high_wavelen) & (wavelen <= low_wavelen);
      return torch::where(medium, smoothed, scaled);
    }
  }
  return inv_freq;
}

double rope_attention_factor(const RopeConfig& rope) {
  if (rope.scaling != RopeScaling::Yarn) return 1.0;
  if (rope.mscale != 0.0 && rope.mscale_all_dim != 0.0)
    return yarn_get_mscale(rope.factor, rope.mscale) / yarn_get_mscale(rope.factor, rope.mscale_all_dim);
  return yarn_get_mscale(rope.factor, 1.0);
}

RotaryEmbedding::RotaryEmbedding(const RopeConfig& rope, int64_t dim)
    : layout_(rope.layout), inv_freq_(rope_inverse_frequencies(rope, dim)), attention_factor_(rope_attention_factor(rope)) {}

RopeAngles RotaryEmbedding::angles(const torch::Tensor& position_ids, torch::ScalarType dtype) const {
  auto compute = dtype == torch::kDouble ? torch::kDouble : torch::kFloat;
  torch::Tensor inv_freq = inv_freq_.to(position_ids.device(), compute);
  torch::Tensor freqs = position_ids.to(compute).unsqueeze(-1) * inv_freq;  // [B, T, dim/2]
  freqs = freqs.unsqueeze(2);                                               // [B, T, 1, dim/2]
  return {(freqs.cos() * attention_factor_).to(dtype), (freqs.sin() * attention_factor_).to(dtype)};
}

torch::Tensor RotaryEmbedding::apply(const torch::Tensor& x, const RopeAngles& a) const {
  const int64_t half = x.size(-1) / 2;
  if (layout_ == RopeLayout::RotateHalf) {
    torch::Tensor x1 = x.narrow(-1, 0, half), x2 = x.narrow(-1, half, half);
    return torch::cat({x1 * a.cos - x2 * a.sin, x2 * a.cos + x1 * a.sin}, -1);
  }
  // Interleaved: pairs (x[2i], x[2i+1]) rotate together, as in DeepSeek's complex-number form.
  std::vector<int64_t> pair_shape = x.sizes().vec();
  pair_shape.back() = half;
  pair_shape.push_back(2);
  torch::Tensor pairs = x.reshape(pair_shape);  // [..., dim/2, 2]
  torch::Tensor even = pairs.select(-1, 0), odd = pairs.select(-1, 1);
  return torch::stack({even * a.cos - odd * a.sin, even * a.sin + odd * a.cos}, -1).flatten(-2);
}

}  // namespace grpo
