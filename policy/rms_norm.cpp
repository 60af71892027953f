#include "policy/rms_norm.h"

namespace grpo {

RMSNormImpl::RMSNormImpl(int64_t dim, double eps) : eps_(eps) {
  weight = register_parameter("weight", torch::ones({dim}));
}

torch::Tensor RMSNormImpl::forward(const torch::Tensor& x) {
  // Half-precision activations are normalised in float32; float32 and float64 ones as they are (no
  // casts: a decode step runs a dozen norms on a handful of values, where each op's overhead shows).
  const bool full_precision = x.scalar_type() == torch::kFloat || x.scalar_type() == torch::kDouble;
  torch::Tensor xf = full_precision ? x : x.to(torch::kFloat);
  torch::Tensor normed = xf * torch::rsqrt(xf.pow(2).mean(-1, /*keepdim=*/true) + eps_);
  return weight * (full_precision ? normed : normed.to(x.scalar_type()));
}

}  // namespace grpo
