#include "rl/experiment/dataset_split.h"

#include <fmt/core.h>

#include <cmath>
#include <limits>
#include <numeric>
#include <random>
#include <stdexcept>

namespace grpo {

std::vector<size_t> shuffled_indices(size_t n, uint64_t seed) {
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), size_t{0});
  std::mt19937_64 rng(seed);
  for (size_t i = n; i-- > 1;) {
    const uint64_t m = i + 1;
    // Largest multiple of m representable: draws at or above it would favour small residues.
    const uint64_t limit = std::numeric_limits<uint64_t>::max() - std::numeric_limits<uint64_t>::max() % m;
    uint64_t r = rng();
    while (r >= limit) r = rng();
    std::swap(order[i], order[r % m]);
  }
  return order;
}

IndexSplit split_indices(size_t n, double test, uint64_t seed) {
  if (!std::isfinite(test) || test < 0) throw std::invalid_argument(fmt::format("split: test must be >= 0, got {}", test));
  size_t count = 0;
  if (test < 1) {
    count = static_cast<size_t>(std::llround(test * static_cast<double>(n)));
  } else {
    if (test != std::floor(test))
      throw std::invalid_argument(fmt::format("split: test must be a fraction below 1 or a whole count, got {}", test));
    count = static_cast<size_t>(test);
    if (count > n) throw std::invalid_argument(fmt::format("split: test = {} but there are only {} records", count, n));
  }
  std::vector<size_t> order = shuffled_indices(n, seed);
  IndexSplit split;
  split.test.assign(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(count));
  split.train.assign(order.begin() + static_cast<std::ptrdiff_t>(count), order.end());
  return split;
}

}  // namespace grpo
