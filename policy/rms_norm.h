#pragma once
// RMSNorm (Zhang & Sennrich 2019): y = x / sqrt(mean(x²) + eps) · weight, no mean subtraction, no bias.
// Statistics in float32 even for bf16 activations, as transformers does.
#include <torch/torch.h>

#include "policy/scalar_constant.h"

namespace grpo {

class RMSNormImpl : public torch::nn::Module {
 public:
  RMSNormImpl(int64_t dim, double eps);
  torch::Tensor forward(const torch::Tensor& x);  // [..., dim] -> [..., dim]

  torch::Tensor weight;  // [dim], HF name "weight"

 private:
  ScalarConstant eps_;
  double inverse_dim_;
};
TORCH_MODULE(RMSNorm);

}  // namespace grpo
