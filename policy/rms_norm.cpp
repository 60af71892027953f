#include "policy/rms_norm.h"

namespace grpo {

RMSNormImpl::RMSNormImpl(int64_t dim, double eps)
    : eps_(eps), inverse_dim_(1.0 / static_cast<double>(dim)) {
  weight = register_parameter("weight", torch::ones({dim}));
}

torch::Tensor RMSNormImpl::forward(const torch::Tensor& x) {
  // Half-precision activations are normalised in float32; float32 and float64 ones as they are (no
  // casts: a decode step runs a dozen norms on a handful of values, where each op's overhead shows).
  const bool full_precision = x.scalar_type() == torch::kFloat || x.scalar_type() == torch::kDouble;
  torch::Tensor xf = full_precision ? x : x.to(torch::kFloat);
  // eps + sum(x²)·(1/dim) in one op, rather than mean(x²) + eps: LibTorch's mean reduction costs four
  // times its sum on short rows.
  torch::Tensor sum_square = (xf * xf).sum(-1, /*keepdim=*/true);
  torch::Tensor normed = xf * torch::rsqrt(torch::add(eps_.like(xf), sum_square, /*alpha=*/inverse_dim_));
  return weight * (full_precision ? normed : normed.to(x.scalar_type()));
}

}  // namespace grpo
