#pragma once
// Mixing datasets with weights (grpo.mix): DeepSeek-R1's SFT data is reasoning samples plus
// non-reasoning data in a chosen proportion. The order is deterministic for a seed on every machine
// (mt19937_64, whose output the C++ standard fixes, with bounded draws by rejection as in
// dataset_split.h), and spelled out here:
//
//  1. Counts. Source i gets n_i = floor(n · w_i / W) records (W = Σ w), and the n − Σ n_i left over go
//     one each to the sources with the largest remainders n · w_i / W − n_i (ties: the earlier source;
//     shares are compared to 1e-9, so decimal weights act as written: 0.7 and 0.3 of 35 is a tie).
//  2. Interleaving. One generator mt19937_64(seed) draws the sources: at each position, with R_i draws
//     of source i still to place, r = draw(Σ R_i) and the source is the first i with R_1 + ... + R_i > r
//     (a uniformly random order of the multiset of counts: source i at a position with probability
//     R_i / Σ R).
//  3. Records. Each source is read through its own shuffled cursor: pass p (from 0) visits the records
//     in the order shuffled_indices(size_i, seed + 1000003 · (i + 1) + p) (dataset_split.h). A source
//     with fewer records than its count is read in several passes, each reshuffled, so its records
//     repeat (at most ceil(n_i / size_i) times; the plan reports the passes).
#include <cstddef>
#include <cstdint>
#include <vector>

namespace grpo {

struct MixSource {
  size_t size = 0;    // records (> 0)
  double weight = 0;  // > 0, relative
};

struct MixDraw {
  size_t source = 0;  // index into the sources
  size_t record = 0;  // index into that source's records
};

struct MixPlan {
  std::vector<MixDraw> draws;  // n draws, in order
  std::vector<size_t> counts;  // n_i: draws per source
  std::vector<size_t> passes;  // passes over each source: ceil(n_i / size_i)
};

// Step 1's counts for n records. Throws std::invalid_argument for no sources, a source of size 0, or a
// weight that is not finite and > 0.
std::vector<size_t> mix_counts(const std::vector<MixSource>& sources, size_t n);

// The largest n at which no source is repeated (every n_i <= size_i): the default size of a mix.
size_t largest_mix_without_repeats(const std::vector<MixSource>& sources);

// The whole order (steps 1 to 3). Throws as mix_counts.
MixPlan plan_mix(const std::vector<MixSource>& sources, size_t n, uint64_t seed);

}  // namespace grpo
