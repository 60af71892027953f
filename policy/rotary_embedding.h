#pragma once
// Rotary position embedding (Su et al. 2021) with the frequency rescalings the supported families use:
// YaRN (DeepSeek-V2/V3), Llama-3 smoothing, linear interpolation. Frequencies follow transformers'
// rope-init functions exactly, so log-probs match checkpoints trained there.
#include <torch/torch.h>

#include "policy/model_config.h"

namespace grpo {

// Inverse frequencies of the `dim/2` rotated pairs after scaling, float64 [dim/2].
torch::Tensor rope_inverse_frequencies(const RopeConfig& rope, int64_t dim);
// Factor applied to cos and sin (YaRN's attention temperature on the rotated part; 1 otherwise).
double rope_attention_factor(const RopeConfig& rope);

// The angles of one forward, laid out for the configured pairing so that a rotation is
//   x' = x · cos + partner(x) · signed_sin
// with partner(x) the other member of each rotated pair (x[2i] <-> x[2i+1] interleaved, x[i] <-> x[i +
// dim/2] rotate-half) and signed_sin = -sin on a pair's first member, +sin on its second. Computed once
// per forward and shared by every layer; an application is then six small ops.
struct RopeAngles {
  torch::Tensor cos;         // [B, T, 1, dim]
  torch::Tensor signed_sin;  // [B, T, 1, dim]
};

class RotaryEmbedding {
 public:
  RotaryEmbedding(const RopeConfig& rope, int64_t dim);
  // position_ids: [B, T] int64. Angles are computed in float32 (float64 when `dtype` is double).
  RopeAngles angles(const torch::Tensor& position_ids, torch::ScalarType dtype) const;
  // x: [B, T, H, dim]; rotates pairs in the configured layout.
  torch::Tensor apply(const torch::Tensor& x, const RopeAngles& angles) const;

 private:
  RopeLayout layout_;
  torch::Tensor inv_freq_;  // float64 [dim/2]
  double attention_factor_;
};

}  // namespace grpo
