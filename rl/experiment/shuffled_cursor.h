#pragma once
// Deterministic passes over a dataset: each pass (epoch) visits every item once in an order shuffled
// from the previous one with a seed derived from the run seed and the epoch number. The order and the
// position are state a checkpoint saves, so a resumed run draws the same prompts as an uninterrupted one.
#include <cstdint>
#include <vector>

#include <nlohmann/json.hpp>

namespace grpo {

class ShuffledCursor {
 public:
  // Throws std::invalid_argument when size is 0.
  ShuffledCursor(size_t size, uint64_t seed);

  // Index of the next item; a new shuffled pass begins when the current one is used up.
  size_t next();

  nlohmann::json state() const;
  // Throws std::runtime_error when `state` is malformed or was saved for a dataset of another size.
  void restore(const nlohmann::json& state);

 private:
  uint64_t seed_;
  std::vector<int64_t> order_;
  size_t position_;
  uint64_t epoch_ = 0;
};

}  // namespace grpo
