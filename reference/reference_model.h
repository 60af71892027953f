#pragma once
// The frozen reference policy π_ref of the GRPO objective's KL term: a copy of the initial policy (or
// another checkpoint), never trained, giving per-token log-probs of sampled sequences. It can be reset
// to the current policy every N steps (DeepSeek-R1-Zero resets every 400) and can live on another
// device than the policy (CPU offload frees accelerator memory for the policy's optimizer state).
#include <torch/torch.h>

#include <string>

#include "policy/causal_lm.h"
#include "policy/token_logprobs.h"

namespace grpo {

class ReferenceModel {
 public:
  // A deep copy of `policy`'s current weights, moved to `device`.
  static ReferenceModel copy_of(const CausalLM& policy, torch::Device device = torch::kCPU);
  // Loaded from a checkpoint directory (must have the policy's architecture to be comparable).
  static ReferenceModel from_checkpoint(const std::string& directory, torch::Device device = torch::kCPU);

  // Per-token log-probs, as token_logprobs() but without gradients, computed on the reference's device
  // and returned on `inputs`' device. hidden positions/targets are given as for logprobs_from_hidden.
  torch::Tensor logprobs(const ModelInputs& inputs, int64_t first_position, const torch::Tensor& targets,
                         const LogprobOptions& options);

  // Overwrites the reference with the policy's current weights.
  void reset_to(const CausalLM& policy);

  CausalLM& model() { return model_; }

 private:
  explicit ReferenceModel(CausalLM model, torch::Device device);
  CausalLM model_;
  torch::Device device_;
};

}  // namespace grpo
