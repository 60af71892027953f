#include "policy/device.h"

#include <fmt/core.h>

#include <cstdlib>
#include <stdexcept>

namespace grpo {

Placement resolve_placement(const std::string& name) {
  const bool cuda = torch::cuda::is_available();
  if (name == "cpu" || (name == "auto" && !cuda)) return {torch::kCPU, torch::kFloat};
  if (name == "auto" || name.rfind("cuda", 0) == 0) {
    if (!cuda) throw std::invalid_argument(fmt::format("device \"{}\": this LibTorch build sees no CUDA device", name));
    int index = 0;
    if (name.size() > 5 && name[4] == ':') {
      index = std::atoi(name.c_str() + 5);
    } else if (const char* local_rank = std::getenv("LOCAL_RANK")) {
      index = std::atoi(local_rank);
    }
    return {torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(index)), torch::kBFloat16};
  }
  throw std::invalid_argument(fmt::format("device \"{}\": expected auto, cpu, cuda or cuda:N", name));
}

}  // namespace grpo
