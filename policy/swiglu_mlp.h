#pragma once
// SwiGLU feed-forward (Shazeer 2020): down_proj(silu(gate_proj x) · up_proj x), no biases. Used as the
// dense MLP of every family and as each DeepSeekMoE expert.
#include <torch/torch.h>

#include <memory>

#include "policy/fused_linears.h"

namespace grpo {

class SwiGluMlpImpl : public torch::nn::Module {
 public:
  SwiGluMlpImpl(int64_t hidden, int64_t intermediate);
  torch::Tensor forward(const torch::Tensor& x);  // [..., hidden] -> [..., hidden]

  torch::nn::Linear gate_proj{nullptr}, up_proj{nullptr}, down_proj{nullptr};

 private:
  // gate_proj and up_proj as one product (their weights are rows of one stacked tensor).
  std::unique_ptr<FusedLinears> gate_up_;
};
TORCH_MODULE(SwiGluMlp);

}  // namespace grpo
