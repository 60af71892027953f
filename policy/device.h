#pragma once
// Where a model runs and in which precision: CPU in float32; CUDA (when LibTorch has it) with bf16
// weights, the device picked by LOCAL_RANK as torchrun sets it. Training a bf16 model keeps float32
// master weights (rl/policy_optimizer.h); router logits, log-probs and losses are computed in float32
// whatever the weights' dtype.
#include <torch/torch.h>

#include <string>

#include "policy/causal_lm.h"

namespace grpo {

struct Placement {
  torch::Device device = torch::kCPU;
  torch::ScalarType dtype = torch::kFloat;
};

// device_name: "auto" (CUDA when available, else CPU), "cpu", "cuda" (device `local_rank`; -1: the one
// the LOCAL_RANK variable names, or 0) or "cuda:N". dtype_name: "auto" (bfloat16 on CUDA, float32 on the CPU), "float32" or "bfloat16".
// Throws std::invalid_argument for an unknown name, a CUDA request LibTorch cannot serve, or float16
// (it needs loss scaling, which grpo does not do).
Placement resolve_placement(const std::string& device_name, const std::string& dtype_name = "auto", int local_rank = -1);

// Moves the model's weights to the placement. The MoE correction biases stay float32: their updates
// (γ ≈ 1e-3) would mostly round away in bf16, whose spacing near 0.5 is 2^-9.
void place_model(CausalLM& model, const Placement& placement);

}  // namespace grpo
