#include "rl/experiment/shuffled_cursor.h"

#include <fmt/core.h>

#include <algorithm>
#include <numeric>
#include <random>
#include <stdexcept>

namespace grpo {

ShuffledCursor::ShuffledCursor(size_t size, uint64_t seed) : seed_(seed), order_(size), position_(size) {
  if (size == 0) throw std::invalid_argument("ShuffledCursor: the dataset is empty");
  std::iota(order_.begin(), order_.end(), 0);
}

size_t ShuffledCursor::next() {
  if (position_ == order_.size()) {
    std::mt19937_64 rng(seed_ * 1000003 + epoch_++);
    std::shuffle(order_.begin(), order_.end(), rng);
    position_ = 0;
  }
  return static_cast<size_t>(order_[position_++]);
}

nlohmann::json ShuffledCursor::state() const {
  return {{"order", order_}, {"position", position_}, {"epoch", epoch_}};
}

void ShuffledCursor::restore(const nlohmann::json& state) {
  try {
    std::vector<int64_t> order = state.at("order").get<std::vector<int64_t>>();
    if (order.size() != order_.size())
      throw std::runtime_error(fmt::format("data cursor state: saved for a dataset of {} items, this one has {}", order.size(), order_.size()));
    const size_t position = state.at("position").get<size_t>();
    if (position > order.size()) throw std::runtime_error("position beyond the dataset");
    order_ = std::move(order);
    position_ = position;
    epoch_ = state.at("epoch").get<uint64_t>();
  } catch (const nlohmann::json::exception& e) {
    throw std::runtime_error(fmt::format("data cursor state: {}", e.what()));
  }
}

}  // namespace grpo
