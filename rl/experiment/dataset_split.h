#pragma once
// Deterministic dataset order for experiment scripts: grpo.shuffle(records, seed) and
// grpo.split(records, {test = 0.1, seed = 0}). The permutation is Fisher-Yates driven by std::mt19937_64
// (whose output sequence the C++ standard fixes) with bounded draws by rejection, spelled out here
// rather than std::shuffle / std::uniform_int_distribution, whose algorithms differ between standard
// libraries: the same seed gives the same split on every machine.
#include <cstddef>
#include <cstdint>
#include <vector>

namespace grpo {

// A permutation of 0..n-1: for i = n-1 down to 1, swap i with j = draw(i + 1), where draw(m) takes
// 64-bit outputs of mt19937_64(seed), rejects those >= the largest multiple of m, and returns r mod m.
std::vector<std::size_t> shuffled_indices(std::size_t n, uint64_t seed);

struct IndexSplit {
  std::vector<std::size_t> train, test;  // each in shuffled order
};

// Shuffles 0..n-1 and puts the first `test_count` into `test`, the rest into `train`, where test_count
// is round(test · n) for 0 <= test < 1, and test itself for a whole number test >= 1. Throws
// std::invalid_argument for a negative or non-finite `test`, a fractional test >= 1, or a count above n.
IndexSplit split_indices(std::size_t n, double test, uint64_t seed);

}  // namespace grpo
