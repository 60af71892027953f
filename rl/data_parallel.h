#pragma once
// The data-parallel pieces of a GRPO step (rl/distributed/distributed.h is the process group they use). Each rank
// samples and scores a contiguous share of the step's prompts, so groups never split across ranks;
// gradients are summed over the ranks against a loss normaliser counted over every rank's tokens (DAPO's
// token-mean over the whole batch); statistics are reduced so that the metrics rank 0 writes are the
// whole batch's. With one process every function here is the identity.
#include <cstdint>
#include <vector>

#include "rl/distributed/distributed.h"
#include "rl/grpo_objective.h"
#include "rl/grpo_trainer.h"

namespace grpo {

// Prompts [begin, end) of `prompts` belong to this rank: balanced, in rank order (rank r's share comes
// before rank r + 1's, so concatenating the ranks' samples gives one process's order).
struct RankShare {
  int64_t begin = 0, end = 0;
};
// Throws std::invalid_argument when there are fewer prompts than ranks (a rank would have nothing to do).
RankShare rank_share(int64_t prompts, const Distributed* distributed);

// Sums the counts and sums of `stats` over the ranks, and takes min/max of the ratio extremes.
void all_reduce(LossStats& stats, Distributed& distributed);

// The per-rank values left in a step's metrics after the trainer's own reductions: times (the slowest
// rank's: "timing/..."), throughputs (added: "tokens_per_second/..."), counters ("/failures").
void reduce_rank_local_metrics(StepMetrics& metrics, Distributed& distributed);

// Every rank's samples, in rank order (on every rank).
std::vector<ScoredSample> all_gather(const std::vector<ScoredSample>& samples, Distributed& distributed);

}  // namespace grpo
