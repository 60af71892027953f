#include "policy/rotary_embedding.h"

#include <cmath>
#include <vector>

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
  torch::Tensor cos = (freqs.cos() * attention_factor_).to(dtype), sin = (freqs.sin() * attention_factor_).to(dtype);
  if (layout_ == RopeLayout::RotateHalf)
    return {torch::cat({cos, cos}, -1), torch::cat({-sin, sin}, -1)};
  // Interleaved: pair i is (x[2i], x[2i+1]), as in DeepSeek's complex-number form.
  return {torch::stack({cos, cos}, -1).flatten(-2), torch::stack({-sin, sin}, -1).flatten(-2)};
}

torch::Tensor RotaryEmbedding::apply(const torch::Tensor& x, const RopeAngles& a) const {
  // x' = x·cos + partner(x)·signed_sin: for a pair (u, v), (u cos − v sin, v cos + u sin), bit for bit
  // what the two-line rotation gives (u − v·s equals u + v·(−s) in IEEE arithmetic).
  const int64_t dim = x.size(-1), half = dim / 2;
  torch::Tensor partner;
  if (layout_ == RopeLayout::RotateHalf) {
    partner = torch::cat({x.narrow(-1, half, half), x.narrow(-1, 0, half)}, -1);
  } else {
    std::vector<int64_t> pairs = x.sizes().vec();
    pairs.back() = half;
    pairs.push_back(2);
    partner = x.reshape(pairs).flip(-1).reshape(x.sizes());
  }
  return x * a.cos + partner * a.signed_sin;
}

}  // namespace grpo
