#pragma once
// Logit distillation (Hinton et al. 2015; TRL's GKD with λ = 0, β = 0): the student is trained to match
// the teacher's token distributions on given completions, per token
//
//   L_t = τ² · KL(p_T(·|x, y<t) ‖ p_S(·|x, y<t)),   p = softmax(z / τ)
//
// over the full vocabulary, or over the teacher's top k tokens plus one bucket for the rest's mass
// (distillation_loss.h). The step's loss is the mean over its completion tokens, whatever the micro-batch
// split: each micro-batch's sum is divided by the whole step's token count before backward, so the
// accumulated gradient is the gradient of the whole step's mean (tested).
//
// Memory: the teacher runs under no-grad; both models' hidden states are projected to the vocabulary only
// at completion positions, `chunk_positions` rows at a time for the teacher (V floats per position per
// chunk) — the student's logits at the micro-batch's completion positions stay alive for backward (about
// 3 · V floats each: logits, log-softmax, gradient). Top-k keeps 2·k numbers per position of the teacher.
#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <vector>

#include "policy/causal_lm.h"
#include "rl/distillation_loss.h"
#include "rl/lr_schedule.h"
#include "rl/policy_optimizer.h"
#include "rl/sft.h"

namespace grpo {

struct LogitDistillationConfig {
  // Optimizer steps; 0 = `epochs` passes over the examples (ceil(N / batch_size) steps each), as sft().
  int64_t steps = 0;
  int64_t epochs = 1;
  int64_t batch_size = 16;       // examples per optimizer step
  int64_t micro_batch_size = 16; // examples per forward (gradient accumulation)
  int64_t max_len = 512;         // columns of a row (build_sft_batch)
  double temperature = 1.0;      // τ of both distributions; the loss is scaled by τ²
  int64_t top_k = 0;             // 0 = the full vocabulary; else the teacher's k tokens + the rest
  int64_t chunk_positions = 256; // positions projected to the vocabulary at once
  LrSchedule lr{1e-5, 0, LrDecay::Cosine, 0, 0.1};
  AdamWSettings adamw{1e-5, 0.9, 0.95, 1e-8, 0.0, false};
  double max_grad_norm = 1.0;
  uint64_t seed = 0;  // data order: a fresh deterministic shuffle every epoch
};

struct LogitDistillationProgress {
  int64_t step = 0, total_steps = 0, epoch = 0;  // step counts from 0
  double loss = 0;              // mean per-token loss (τ²-scaled KL) of the step
  double kl = 0;                // mean per-token KL(teacher ‖ student) at τ = 1 over the full vocabulary
  double logprob_gap = 0;       // mean (log p_S − log p_T) of the completion's own next token
  double argmax_agreement = 0;  // fraction of positions where both models' most likely token agree
  double grad_norm = 0, learning_rate = 0, tokens_per_second = 0;
  int64_t tokens = 0;           // completion tokens of the step
  bool skipped = false;         // non-finite gradient: the update was not applied
};

struct LogitDistillationResult {
  int64_t steps = 0, tokens = 0, skipped_updates = 0, truncated = 0, dropped = 0;
  double final_loss = 0;  // mean loss of the last 10% of steps
};

// The loss of one micro-batch against the teacher: Σ over its completion positions of the per-token loss
// (differentiable, in the student's graph), the diagnostics, and the number of positions.
struct DistillationBatchLoss {
  torch::Tensor sum;            // scalar
  double kl_sum = 0;            // Σ full-vocabulary KL at τ = 1 (a metric, without gradients)
  DistillationAgreement agreement;
  int64_t tokens = 0;
};
DistillationBatchLoss logit_distillation_loss(CausalLM& student, CausalLM& teacher, const SftBatch& batch,
                                              const LogitDistillationConfig& config);

// The optimizer steps logit_distillation() takes for `examples` examples.
int64_t logit_distillation_steps(const LogitDistillationConfig& config, size_t examples);

// Trains `student` in place toward `teacher` (frozen: never stepped, run in eval mode without gradients).
// Throws std::invalid_argument for no examples, batch or micro-batch sizes < 1, a temperature <= 0, a
// top_k outside 0..V, or models whose vocabulary sizes differ (naming both).
LogitDistillationResult logit_distillation(CausalLM& student, CausalLM& teacher, const std::vector<SftExample>& examples,
                                           const LogitDistillationConfig& config, int32_t pad_id,
                                           const std::function<void(const LogitDistillationProgress&)>& on_step = {});

}  // namespace grpo
