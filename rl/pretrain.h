#pragma once
// Next-token pretraining on raw text: the documents are tokenized, joined with EOS between them into
// one stream, and trained on random windows of seq_len + 1 tokens (cross-entropy on every position).
// This is how the demos build a base model from nothing; it is not a large-scale pretraining loop.
#include <torch/torch.h>

#include <functional>
#include <string>
#include <vector>

#include "policy/causal_lm.h"
#include "policy/tokenizer/tokenizer.h"
#include "rl/lr_schedule.h"
#include "rl/policy_optimizer.h"

namespace grpo {

struct PretrainConfig {
  int64_t steps = 300;
  int64_t batch_size = 16;
  int64_t seq_len = 128;
  LrSchedule lr{3e-3, 20, LrDecay::Cosine, 300, 0.1};
  AdamWSettings adamw{3e-3, 0.9, 0.95, 1e-8, 0.1, false};
  double max_grad_norm = 1.0;
  uint64_t seed = 0;
};

struct PretrainProgress {
  int64_t step = 0;
  double loss = 0, grad_norm = 0, learning_rate = 0, tokens_per_second = 0;
};

// Trains `model` in place. `on_step` (optional) sees every step's progress. Returns the mean loss of the
// last 10% of steps. Throws std::invalid_argument when the documents hold fewer than seq_len + 1 tokens.
double pretrain(CausalLM& model, const Tokenizer& tokenizer, const std::vector<std::string>& documents,
                const PretrainConfig& config, const std::function<void(const PretrainProgress&)>& on_step = {});

}  // namespace grpo
