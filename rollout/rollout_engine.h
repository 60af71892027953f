#pragma once
// RolloutEngine: samples G completions for each of a batch of prompts, fast.
//
//  - Each prompt is prefilled once; its KV cache rows are then copied to its G samples (no G-fold
//    prefill).
//  - Decoding runs all active samples as one batch through the KV cache (MLA: the latent cache).
//  - Continuous batching: a finished sample leaves the batch at once, and waiting prompts are prefilled
//    and join as soon as there is room, so one long group does not leave the rest of the batch idle.
//    Rows of different lengths share one cache, aligned on the right and masked on the left; leading
//    positions that every row masks are trimmed away.
//  - Reproducible: sample s of a prompt with seed p draws token t with the uniform number
//    sampling_uniform(sample_seed(p, s), t). Results depend only on the prompt, its seed and the model,
//    not on batch size, batch composition or admission order (up to float rounding of batched matmuls,
//    which float64 models remove).
// generate() checks the requests and runs the loop of rollout/decode_batch.h: admit waiting prompts,
// one decode step, sample, retire finished rows.
#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <vector>

#include "policy/causal_lm.h"
#include "policy/tokenizer/tokenizer.h"
#include "rollout/memory_budget.h"
#include "rollout/sampling.h"
#include "rollout/stop_conditions.h"

namespace grpo {

struct PromptRequest {
  std::vector<int32_t> prompt_ids;
  int64_t num_samples = 1;   // G
  uint64_t seed = 0;         // sample s uses sample_seed(seed, s)
  int64_t first_sample = 0;  // samples are numbered first_sample .. first_sample + G - 1 (more samples of
                             // a prompt later, e.g. refilling a group, continue the numbering)
};

// A token and its log-probability (an alternative of a sampled token).
struct TokenLogprob {
  int32_t token = 0;
  float logprob = 0;
};

struct Completion {
  int64_t request_index = 0;
  int64_t sample_index = 0;
  std::vector<int32_t> prompt_ids;
  std::vector<int32_t> completion_ids;
  // log p(completion_ids[t] | prefix) under softmax(logits / temperature), before top-k/top-p/min-p
  // truncation (see sampled_token_logprobs): what the trainer's log_softmax(logits / T) computes.
  std::vector<float> logprobs;
  FinishReason finish_reason = FinishReason::Length;
  std::string text;  // the decoded completion (empty without a tokenizer)
  // MoE models with record_experts: experts chosen at every position the model consumed, i.e. the
  // prompt and all completion tokens but the last, as [n_moe_layers, prompt + completion - 1, top_k]
  // int64 — the layout a training forward over prompt + completion[:-1] replays. Undefined otherwise.
  torch::Tensor experts;
  // Requests with top_logprobs = k (generation_request.h): the k likeliest tokens at every completion
  // position with their log-probs under the same tempered distribution, most likely first. Empty
  // otherwise.
  std::vector<std::vector<TokenLogprob>> top_logprobs;
};

struct RolloutOptions {
  SamplingParams sampling;
  StopConditions stop;
  int64_t max_batch_rows = 64;  // samples decoded together
  bool record_experts = false;
  // Bound on the KV cache's storage in bytes (0 = none): fewer rows are decoded together when more
  // would not fit (see memory_budget.h). Weights and one step's activations are not counted.
  int64_t memory_budget_bytes = 0;
};

struct RolloutStats {
  int64_t prompts = 0, completions = 0;
  int64_t prompt_tokens = 0;      // prefilled (each prompt once)
  int64_t generated_tokens = 0;
  int64_t decode_steps = 0;
  int64_t peak_rows = 0;
  int64_t peak_cache_bytes = 0;
  double prefill_seconds = 0, decode_seconds = 0;
};

class RolloutEngine {
 public:
  // The model is shared (a handle), not copied; tokenizer may be null (no text, no stop strings).
  RolloutEngine(CausalLM model, const Tokenizer* tokenizer, RolloutOptions options);

  // All completions, ordered by (request, sample). Throws std::invalid_argument for an empty prompt or
  // a token id outside the vocabulary, naming the request, and MemoryBudgetExceeded, before sampling
  // anything, when one request's G rows of prompt + max_new_tokens positions exceed the memory budget.
  std::vector<Completion> generate(const std::vector<PromptRequest>& requests);

  const RolloutStats& stats() const { return stats_; }
  const RolloutOptions& options() const { return options_; }

 private:
  CausalLM model_;
  const Tokenizer* tokenizer_;
  RolloutOptions options_;
  RolloutStats stats_;
};

}  // namespace grpo
