#include "policy/swiglu_mlp.h"

#include "policy/projection.h"

namespace grpo {

SwiGluMlpImpl::SwiGluMlpImpl(int64_t hidden, int64_t intermediate) {
  using torch::nn::Linear;
  using torch::nn::LinearOptions;
  gate_proj = register_module("gate_proj", Linear(LinearOptions(hidden, intermediate).bias(false)));
  up_proj = register_module("up_proj", Linear(LinearOptions(hidden, intermediate).bias(false)));
  down_proj = register_module("down_proj", Linear(LinearOptions(intermediate, hidden).bias(false)));
}

torch::Tensor SwiGluMlpImpl::forward(const torch::Tensor& x) {
  return project(down_proj, torch::silu(project(gate_proj, x)) * project(up_proj, x));
}

}  // namespace grpo
