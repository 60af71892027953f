#pragma once
// Supervised fine-tuning on prompt/completion pairs (the R1 cold start, distillation): next-token
// cross-entropy on the completion tokens only. Prompt tokens are context, never targets.
//
// One example is the token sequence s = prompt + completion (n tokens). It occupies n − 1 columns:
//
//   input_ids   s0 s1 ... s(n-2)
//   targets     s1 s2 ... s(n-1)
//   loss_mask   0  0  ... 1  1       1 where the target is a completion token (index >= prompt length)
//                                    and, with a completion_mask, one it marks
//   position    0  1  ... n-2
//
// Unpacked, each example is one row, right-padded. Packed, examples are laid end to end in rows of at
// most max_len columns, first-fit in order; each keeps its own positions (0, 1, ... restart at every
// example), so an example sees the rotary positions it would see alone. Attention, however, is only
// causal: a later example in a row also attends to the examples before it. The model's attention mask is
// a padding mask, not a block-diagonal one, so this is the packing of TRL's ConstantLengthDataset and of
// most pretraining loops; the first example of each row is computed exactly as unpacked (tested), the
// others see extra context. Packing is off by default.
#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <vector>

#include "policy/causal_lm.h"
#include "rl/lr_schedule.h"
#include "rl/policy_optimizer.h"

namespace grpo {

struct SftExample {
  std::vector<int32_t> prompt_ids;      // BOS included when the tokenizer has one
  std::vector<int32_t> completion_ids;  // EOS included when it should be learned
  // Empty: every completion token is a target. Else one entry per completion token, 1 where it is a
  // target: a multi-turn conversation trains its assistant turns, not the user turns between them.
  std::vector<uint8_t> completion_mask;
};

struct SftBatch {
  torch::Tensor input_ids;       // [B, T] int64 (pad_id where padded)
  torch::Tensor attention_mask;  // [B, T] bool: real tokens
  torch::Tensor position_ids;    // [B, T] int64: restart at 0 for every example
  torch::Tensor targets;         // [B, T] int64 (0 where padded)
  torch::Tensor loss_mask;       // [B, T] float32: 1 where the target is a completion token
  int64_t truncated = 0;         // examples cut to max_len columns (their tail is lost)
  int64_t dropped = 0;           // examples with no completion token left after truncation
};

// Lays out examples in rows of max_len columns (max_len >= 1): one per row, or packed. An example longer
// than max_len + 1 tokens keeps its first max_len + 1 tokens (counted in `truncated`); one left with no
// completion target is left out (counted in `dropped`). Throws std::invalid_argument for max_len < 1 or
// an example with no completion tokens.
SftBatch build_sft_batch(const std::vector<const SftExample*>& examples, int64_t max_len, bool pack, int32_t pad_id);

// Σ over masked positions of −log p(target) and the number of such positions, for one forward of the
// batch (MoE balance loss not included). The mean completion-token loss is sum / tokens.
struct MaskedTokenLoss {
  torch::Tensor sum;  // scalar, differentiable
  int64_t tokens = 0;
};
MaskedTokenLoss completion_loss(CausalLM& model, const SftBatch& batch);

struct SftConfig {
  // Optimizer steps; 0 = `epochs` passes over the data (ceil(N / batch_size) steps each).
  int64_t steps = 0;
  int64_t epochs = 1;
  int64_t batch_size = 16;  // examples per optimizer step
  int64_t max_len = 512;    // columns of a row (an example uses its token count − 1)
  bool pack = false;
  // DeepSeek-R1's SFT: cosine decay to a tenth of the peak.
  LrSchedule lr{1e-5, 0, LrDecay::Cosine, 0, 0.1};
  AdamWSettings adamw{1e-5, 0.9, 0.95, 1e-8, 0.0, false};
  double max_grad_norm = 1.0;
  uint64_t seed = 0;  // data order: a fresh deterministic shuffle every epoch
};

struct SftProgress {
  int64_t step = 0, total_steps = 0, epoch = 0;
  double loss = 0, grad_norm = 0, learning_rate = 0, tokens_per_second = 0;
  int64_t completion_tokens = 0;  // loss tokens of this step
  bool skipped = false;           // non-finite gradient: the update was not applied
};

struct SftResult {
  int64_t steps = 0;
  double final_loss = 0;  // mean completion-token loss of the last 10% of steps
  int64_t completion_tokens = 0, truncated = 0, dropped = 0, skipped_updates = 0;
};

// The optimizer steps sft() takes for `examples` examples: config.steps, or epochs · ceil(examples / batch_size).
int64_t sft_steps(const SftConfig& config, size_t examples);

// Trains `model` in place (the LR schedule's total_steps is set to the step count when it is 0). Each
// step's loss is the mean over the completion tokens of its batch_size examples. Throws
// std::invalid_argument for no examples, batch_size < 1, or an invalid schedule.
SftResult sft(CausalLM& model, const std::vector<SftExample>& examples, const SftConfig& config, int32_t pad_id,
              const std::function<void(const SftProgress&)>& on_step = {});

}  // namespace grpo
