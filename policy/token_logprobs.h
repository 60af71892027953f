#pragma once
// Per-token log-probabilities of given sequences: log p(ids[t+1] | ids[..t]) under softmax(logits / T).
// The vocabulary projection runs a few positions at a time, so the full [B, T, V] logits tensor is
// never held (with V = 152k and T = 8k that would be 5 GB per sequence in float32). Computed in float32
// whatever the model's dtype: log-prob ratios in GRPO are differences of nearly equal numbers.
#include <torch/torch.h>

#include "policy/causal_lm.h"

namespace grpo {

struct LogprobOptions {
  double temperature = 1.0;
  int64_t chunk_positions = 256;  // positions projected to the vocabulary at once (per row)
  RoutingTrace* routing = nullptr;
};

// ids: [B, T], attention_mask: [B, T] (undefined = all real). Returns float32 [B, T-1]; entry t is the
// log-probability of ids[:, t+1]. Gradients flow when grad mode is on.
torch::Tensor token_logprobs(CausalLM& model, const torch::Tensor& ids, const torch::Tensor& attention_mask = {},
                             const LogprobOptions& options = {});

// The same from hidden states already computed: hidden [B, T, H] predicts targets [B, T]. When
// `entropy` is given it receives the entropy of each position's tempered distribution, float32 [B, T]
// (with gradients when grad mode is on), computed chunk by chunk alongside.
torch::Tensor logprobs_from_hidden(CausalLM& model, const torch::Tensor& hidden, const torch::Tensor& targets,
                                   const LogprobOptions& options = {}, torch::Tensor* entropy = nullptr);

}  // namespace grpo
