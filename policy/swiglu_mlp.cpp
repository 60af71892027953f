#include "policy/swiglu_mlp.h"

#include "policy/projection.h"

namespace grpo {

SwiGluMlpImpl::SwiGluMlpImpl(int64_t hidden, int64_t intermediate) {
  using torch::nn::Linear;
  using torch::nn::LinearOptions;
  gate_proj = register_module("gate_proj", Linear(LinearOptions(hidden, intermediate).bias(false)));
  up_proj = register_module("up_proj", Linear(LinearOptions(hidden, intermediate).bias(false)));
  down_proj = register_module("down_proj", Linear(LinearOptions(intermediate, hidden).bias(false)));
  gate_up_ = std::make_unique<FusedLinears>(std::vector<Linear>{gate_proj, up_proj});
}

torch::Tensor SwiGluMlpImpl::forward(const torch::Tensor& x) {
  std::vector<torch::Tensor> gate_up = gate_up_->forward_split(x);  // [..., I] twice, one product
  return project(down_proj, torch::silu(gate_up[0]) * gate_up[1]);
}

}  // namespace grpo
