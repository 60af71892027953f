#pragma once
// Token sampling from next-token logits: temperature, then top-k, top-p (nucleus) and min-p, each
// applied to the distribution the previous one left (renormalised), as transformers' logits processors
// do in that order. Randomness comes from one uniform number per (sample, token), derived from the
// sample's seed and the token's index (counter-based): a sample's tokens depend only on its own seed
// and logits, never on which other samples share its batch or on how many threads run.
#include <torch/torch.h>

#include <cstdint>
#include <vector>

namespace grpo {

struct SamplingParams {
  double temperature = 1.0;  // 0 = greedy
  int64_t top_k = 0;         // 0 = off
  double top_p = 1.0;        // 1 = off
  double min_p = 0.0;        // 0 = off; keep tokens with p >= min_p · max p
  bool greedy() const { return temperature <= 0.0; }
};

// Probabilities after temperature and the filters, renormalised: [R, V] float32 logits -> [R, V].
torch::Tensor filtered_probabilities(const torch::Tensor& logits, const SamplingParams& params);

// Log-probabilities of `tokens` [R] under softmax(logits / T) — tempered but NOT truncated by
// top-k/top-p/min-p: exactly what a trainer computes with log_softmax(logits / T), so rollout and
// training log-probs compare like with like. Greedy decoding reports T = 1. Float32 [R].
torch::Tensor sampled_token_logprobs(const torch::Tensor& logits, const torch::Tensor& tokens, const SamplingParams& params);

// Draws one token per row. uniforms: one number in [0, 1) per row (see sampling_uniform).
// Returns int64 [R]. Greedy takes the arg-max (lowest id on ties).
torch::Tensor sample_tokens(const torch::Tensor& logits, const std::vector<double>& uniforms, const SamplingParams& params);

// Combines two seeds into one (SplitMix64-based): derived seeds for steps, prompts, epochs.
uint64_t mix_seeds(uint64_t a, uint64_t b);
// Seed of sample `sample_index` of a prompt whose generation seed is `prompt_seed`.
uint64_t sample_seed(uint64_t prompt_seed, int64_t sample_index);
// The uniform number in [0, 1) that decides token `token_index` of a sample (SplitMix64 of both).
double sampling_uniform(uint64_t sample_seed, int64_t token_index);

}  // namespace grpo
