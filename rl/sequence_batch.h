#pragma once
// SequenceBatch: sampled completions laid out for a training forward. Prompts are left-padded and
// completions right-padded, so every completion starts in the same column and the hidden state that
// predicts completion token t sits at column first_position + t for every row:
//
//   input_ids  [ pad pad p0 p1 p2 | c0 c1 c2 pad ]      (prompt, completion without its last token)
//   targets                     [ c0 c1 c2 c3 pad ]      (completion tokens predicted)
//   first_position = P - 1 (P = longest prompt)
#include <torch/torch.h>

#include <vector>

#include "policy/forward_context.h"
#include "rollout/rollout_engine.h"

namespace grpo {

struct SequenceBatch {
  torch::Tensor input_ids;         // [B, P + C - 1] int64
  torch::Tensor attention_mask;    // [B, P + C - 1] bool
  torch::Tensor targets;           // [B, C] int64 (0 where padded)
  torch::Tensor completion_mask;   // [B, C] float32: 1 for completion tokens that count
  torch::Tensor rollout_logprobs;  // [B, C] float32 (0 where padded)
  torch::Tensor advantages;        // [B] float32
  torch::Tensor ref_logprobs;      // [B, C] float32, when a reference is used
  RoutingTrace replay;             // MoE with recorded experts: per layer [B, P + C - 1, top_k]
  int64_t first_position = 0;

  int64_t rows() const { return input_ids.size(0); }
  // The rows `index` (a micro-batch or a minibatch); same widths.
  SequenceBatch select(const std::vector<int64_t>& index) const;
  SequenceBatch to(torch::Device device) const;
};

// Lays out completions (each with its prompt) and their advantages. With `with_replay`, every completion
// must carry experts (rollout with record_experts). `mask_truncated` zeroes the mask of samples that hit
// max_new_tokens (overlong filtering, DAPO §3.4).
SequenceBatch build_sequence_batch(const std::vector<const Completion*>& completions, const std::vector<double>& advantages,
                                   bool with_replay, bool mask_truncated);

}  // namespace grpo
