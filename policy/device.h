#pragma once
// Where a model runs and in which precision: CPU in float32; CUDA (when LibTorch has it) with bf16
// weights, the device picked by LOCAL_RANK as torchrun sets it.
#include <torch/torch.h>

#include <string>

namespace grpo {

struct Placement {
  torch::Device device = torch::kCPU;
  torch::ScalarType dtype = torch::kFloat;
};

// "auto" (CUDA when available, else CPU), "cpu", "cuda" or "cuda:N". Throws std::invalid_argument for
// an unknown name or a CUDA request LibTorch cannot serve.
Placement resolve_placement(const std::string& device_name);

}  // namespace grpo
