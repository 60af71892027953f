#include "rl/epoch_shuffled_batches.h"

#include <algorithm>
#include <numeric>
#include <random>

namespace grpo {

EpochShuffledBatches::EpochShuffledBatches(int64_t examples, uint64_t seed)
    : order_(static_cast<size_t>(std::max<int64_t>(0, examples))), seed_(seed), cursor_(order_.size()) {
  std::iota(order_.begin(), order_.end(), 0);
}

std::vector<int64_t> EpochShuffledBatches::next(int64_t batch_size) {
  std::vector<int64_t> batch;
  const int64_t size = std::min<int64_t>(batch_size, static_cast<int64_t>(order_.size()));
  while (static_cast<int64_t>(batch.size()) < size) {
    if (cursor_ == order_.size()) {
      std::mt19937_64 rng(seed_ * 1000003 + static_cast<uint64_t>(++epoch_));
      std::shuffle(order_.begin(), order_.end(), rng);
      cursor_ = 0;
    }
    batch.push_back(order_[cursor_++]);
  }
  return batch;
}

}  // namespace grpo
