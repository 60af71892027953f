#pragma once
// The walk over a fine-tuning set that sft() and the logit-distillation loop share: every example once
// per epoch, in an order reshuffled at each epoch boundary from (seed, epoch), a batch taking up where
// the last one stopped (a batch may span two epochs). Deterministic on every machine.
#include <cstdint>
#include <vector>

namespace grpo {

class EpochShuffledBatches {
 public:
  EpochShuffledBatches(int64_t examples, uint64_t seed);
  // The indices of the next min(batch_size, examples) examples.
  std::vector<int64_t> next(int64_t batch_size);
  // The epoch the last index returned belongs to, counted from 0 (-1 before the first batch).
  int64_t epoch() const { return epoch_; }

 private:
  std::vector<int64_t> order_;
  uint64_t seed_;
  size_t cursor_;
  int64_t epoch_ = -1;
};

}  // namespace grpo
