#include "policy/device.h"

#include <fmt/core.h>

#include <cstdlib>
#include <stdexcept>

namespace grpo {
namespace {

torch::Device resolve_device(const std::string& name, int local_rank) {
  const bool cuda = torch::cuda::is_available();
  if (name == "cpu" || (name == "auto" && !cuda)) return torch::kCPU;
  if (name == "auto" || name.rfind("cuda", 0) == 0) {
    if (!cuda) throw std::invalid_argument(fmt::format("device \"{}\": this LibTorch build sees no CUDA device", name));
    int index = 0;
    if (name.size() > 5 && name[4] == ':') {
      index = std::atoi(name.c_str() + 5);
    } else if (local_rank >= 0) {
      index = local_rank;
    } else if (const char* variable = std::getenv("LOCAL_RANK")) {
      index = std::atoi(variable);
    }
    if (index < 0 || index >= static_cast<int>(torch::cuda::device_count()))
      throw std::invalid_argument(fmt::format("device \"{}\": CUDA device {} requested, {} visible", name, index,
                                              torch::cuda::device_count()));
    return torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(index));
  }
  throw std::invalid_argument(fmt::format("device \"{}\": expected auto, cpu, cuda or cuda:N", name));
}

}  // namespace

Placement resolve_placement(const std::string& device_name, const std::string& dtype_name, int local_rank) {
  Placement p;
  p.device = resolve_device(device_name, local_rank);
  if (dtype_name == "auto") {
    p.dtype = p.device.is_cuda() ? torch::kBFloat16 : torch::kFloat;
  } else if (dtype_name == "float32" || dtype_name == "fp32") {
    p.dtype = torch::kFloat;
  } else if (dtype_name == "bfloat16" || dtype_name == "bf16") {
    p.dtype = torch::kBFloat16;
  } else if (dtype_name == "float16" || dtype_name == "fp16") {
    throw std::invalid_argument("dtype \"" + dtype_name + "\": float16 training needs loss scaling, which grpo does not do; use bfloat16");
  } else {
    throw std::invalid_argument("dtype \"" + dtype_name + "\": expected auto, float32 or bfloat16");
  }
  return p;
}

void place_model(CausalLM& model, const Placement& placement) {
  model->to(placement.device, placement.dtype);
  torch::NoGradGuard no_grad;
  for (MoeRouter& router : model->routers())
    if (router->has_correction_bias()) router->e_score_correction_bias.set_data(router->e_score_correction_bias.to(torch::kFloat));
}

}  // namespace grpo
