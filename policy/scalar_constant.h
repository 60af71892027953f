#pragma once
// A number kept as 0-dim CPU tensors, made once and reused. `tensor * 0.5` wraps its Scalar into a
// fresh float64 tensor on every call, and an operand of another dtype than the tensor's takes a
// slower casting path: here 3.5 us for `x * 0.5` or `x * double_0dim` against 1.4 us with a float32
// 0-dim tensor on a float32 x. A decode step of a small model runs dozens of such ops. Type promotion
// treats a 0-dim tensor like a Scalar, so the result keeps x's dtype and device (CPU 0-dim tensors
// combine with CUDA tensors too); bf16 and f16 tensors get the float32 constant, which their ops
// compute in anyway.
#include <torch/torch.h>

namespace grpo {

class ScalarConstant {
 public:
  explicit ScalarConstant(double value)
      : f32_(torch::scalar_tensor(value, torch::kFloat)), f64_(torch::scalar_tensor(value, torch::kDouble)) {}
  // The constant for use with x: float64 for float64 tensors, float32 otherwise.
  const torch::Tensor& like(const torch::Tensor& x) const { return x.scalar_type() == torch::kDouble ? f64_ : f32_; }

 private:
  torch::Tensor f32_, f64_;
};

}  // namespace grpo
