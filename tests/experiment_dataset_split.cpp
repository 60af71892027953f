// Deterministic shuffles and train/test splits for experiment scripts.
#include <doctest/doctest.h>

#include <algorithm>
#include <random>
#include <stdexcept>

#include "rl/experiment/dataset_split.h"

using namespace grpo;

TEST_CASE("shuffled_indices: a permutation, fixed by the seed, different for another seed") {
  std::vector<size_t> a = shuffled_indices(50, 7), b = shuffled_indices(50, 7), c = shuffled_indices(50, 8);
  CHECK(a == b);
  CHECK(a != c);
  std::vector<size_t> sorted = a;
  std::sort(sorted.begin(), sorted.end());
  for (size_t i = 0; i < sorted.size(); ++i) CHECK(sorted[i] == i);
  CHECK(shuffled_indices(0, 1).empty());
  CHECK(shuffled_indices(1, 1) == std::vector<size_t>{0});
}

TEST_CASE("shuffled_indices follows the documented Fisher-Yates on mt19937_64, worked by hand for n = 3") {
  // The standard fixes mt19937_64's outputs; with 2^64 - 1 far above the bounds, no draw is rejected in
  // practice (probability < 1e-18), so the swaps are i = 2 with r1 % 3, then i = 1 with r2 % 2.
  std::mt19937_64 rng(42);
  const uint64_t r1 = rng(), r2 = rng();
  std::vector<size_t> expected = {0, 1, 2};
  std::swap(expected[2], expected[r1 % 3]);
  std::swap(expected[1], expected[r2 % 2]);
  CHECK(shuffled_indices(3, 42) == expected);
  // And the 10000th output of a default-seeded engine is the value the standard gives.
  std::mt19937_64 standard;
  standard.discard(9999);
  CHECK(standard() == 9981545732273789042ull);
}

TEST_CASE("split_indices: fraction or count, disjoint and complete, test part is the shuffle's head") {
  IndexSplit s = split_indices(20, 0.1, 3);
  CHECK(s.test.size() == 2);
  CHECK(s.train.size() == 18);
  std::vector<size_t> all = s.test;
  all.insert(all.end(), s.train.begin(), s.train.end());
  CHECK(all == shuffled_indices(20, 3));
  CHECK(split_indices(20, 5, 3).test.size() == 5);
  CHECK(split_indices(7, 0.5, 3).test.size() == 4);  // round(3.5) = 4
  CHECK(split_indices(7, 0, 3).test.empty());
  CHECK_THROWS_AS(split_indices(7, -0.1, 3), std::invalid_argument);
  CHECK_THROWS_AS(split_indices(7, 1.5, 3), std::invalid_argument);
  CHECK_THROWS_AS(split_indices(7, 8, 3), std::invalid_argument);
}
