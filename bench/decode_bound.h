#pragma once
// What a decode step must read, for the bandwidth bounds of the rollout benchmarks.
#include <cmath>

#include "policy/model_config.h"
#include "policy/model_size.h"

namespace grpo::bench {

// Weight bytes one decode step of `batch` rows reads. Every dense weight is read once; the input
// embedding is a lookup of `batch` rows (unless tied: then it is the output head, read whole); a routed
// expert is read when at least one row picks it, which with uniform routing happens with probability
// 1 - (1 - k/E)^batch.
inline double weight_bytes_per_step(const ModelConfig& config, const ParameterCounts& params, int64_t batch,
                                    double bytes_per_value) {
  double values = static_cast<double>(params.total - params.routed_experts);
  if (!config.tie_word_embeddings) values -= static_cast<double>(params.embedding - batch * config.hidden_size);
  if (config.has_moe()) {
    const double picked = static_cast<double>(config.moe.num_experts_per_tok) / config.moe.n_routed_experts;
    values += params.routed_experts * (1.0 - std::pow(1.0 - picked, static_cast<double>(batch)));
  }
  return bytes_per_value * values;
}

}  // namespace grpo::bench
