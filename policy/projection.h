#pragma once
// x · Wᵀ (+ b), as torch::nn::Linear computes it, with one difference that matters for decoding: a
// single row goes through matrix-vector multiplication. BLAS gemm packs (copies) the whole weight
// matrix on every call, which for one row roughly triples the memory traffic of an operation that is
// bound by reading the weights once: a batch-1 decode step is almost nothing else.
#include <torch/torch.h>

#include <vector>

namespace grpo {

// x: [..., in] (or [in]), weight: [out, in], bias: [out] or undefined. Returns [..., out] (or [out]).
inline torch::Tensor project(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias = {}) {
  const int64_t in = weight.size(1);
  // General path: linear (gemm). Fast path (one-row projection, below): when x holds a single row
  // (numel == in) of the weight's dtype, torch::mv. Parity test: tests/policy_fast_paths.cpp
  // ("fast path: one-row projection").
  if (x.numel() != in || x.scalar_type() != weight.scalar_type()) return torch::nn::functional::linear(x, weight, bias);
  std::vector<int64_t> shape = x.sizes().vec();
  shape.back() = weight.size(0);
  // numel == in: every dimension but the last is 1, so the view always exists.
  torch::Tensor y = torch::mv(weight, x.view({in}));
  if (bias.defined()) y = y + bias;
  return y.view(shape);
}

inline torch::Tensor project(const torch::nn::Linear& layer, const torch::Tensor& x) {
  return project(x, layer->weight, layer->bias);
}

}  // namespace grpo
