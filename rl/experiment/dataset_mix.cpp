#include "rl/experiment/dataset_mix.h"

#include <fmt/core.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <stdexcept>

#include "rl/experiment/dataset_split.h"

namespace grpo {
namespace {

// Shares are compared on a grid of 1e-9, so that decimal weights act as written: with weights 0.7 and
// 0.3, n = 35 gives exact shares 24.5 and 10.5 (24.499999999999996 in floating point) and a tie.
constexpr double kShareTolerance = 1e-9;

void check_sources(const std::vector<MixSource>& sources) {
  if (sources.empty()) throw std::invalid_argument("mix: no datasets to mix");
  for (size_t i = 0; i < sources.size(); ++i) {
    if (sources[i].size == 0) throw std::invalid_argument(fmt::format("mix: dataset {} has no records", i + 1));
    if (!std::isfinite(sources[i].weight) || sources[i].weight <= 0)
      throw std::invalid_argument(fmt::format("mix: dataset {} has weight {}; weights must be > 0", i + 1, sources[i].weight));
  }
}

// A uniform draw from 0..m-1 (m >= 1): 64-bit outputs at or above the largest multiple of m are rejected.
uint64_t bounded_draw(std::mt19937_64& rng, uint64_t m) {
  const uint64_t limit = std::numeric_limits<uint64_t>::max() - std::numeric_limits<uint64_t>::max() % m;
  uint64_t r = rng();
  while (r >= limit) r = rng();
  return r % m;
}

}  // namespace

std::vector<size_t> mix_counts(const std::vector<MixSource>& sources, size_t n) {
  check_sources(sources);
  double total = 0;
  for (const MixSource& s : sources) total += s.weight;
  std::vector<size_t> counts(sources.size());
  std::vector<double> remainder(sources.size());
  size_t assigned = 0;
  for (size_t i = 0; i < sources.size(); ++i) {
    const double exact = static_cast<double>(n) * sources[i].weight / total;
    counts[i] = static_cast<size_t>(std::floor(exact + kShareTolerance));
    remainder[i] = std::round(std::max(0.0, exact - static_cast<double>(counts[i])) / kShareTolerance) * kShareTolerance;
    assigned += counts[i];
  }
  std::vector<size_t> order(sources.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return remainder[a] > remainder[b]; });
  for (size_t k = 0; assigned < n; ++k, ++assigned) ++counts[order[k % order.size()]];
  return counts;
}

size_t largest_mix_without_repeats(const std::vector<MixSource>& sources) {
  check_sources(sources);
  double total = 0;
  for (const MixSource& s : sources) total += s.weight;
  // From n = (size_i + 1) / share_i on, source i gets at least floor(n · share_i) > size_i records; below
  // the smallest such bound, the remainders decide, so the sizes are tried downwards from it.
  double bound = std::numeric_limits<double>::infinity();
  for (const MixSource& s : sources) bound = std::min(bound, static_cast<double>(s.size + 1) * total / s.weight);
  for (size_t n = static_cast<size_t>(std::ceil(bound));; --n) {
    const std::vector<size_t> counts = mix_counts(sources, n);
    bool fits = true;
    for (size_t i = 0; i < sources.size(); ++i) fits = fits && counts[i] <= sources[i].size;
    if (fits) return n;
  }
}

MixPlan plan_mix(const std::vector<MixSource>& sources, size_t n, uint64_t seed) {
  MixPlan plan;
  plan.counts = mix_counts(sources, n);
  std::vector<size_t> remaining = plan.counts;
  std::vector<size_t> read(sources.size(), 0);  // records read from each source so far
  std::vector<std::vector<size_t>> order(sources.size());
  plan.passes.assign(sources.size(), 0);
  std::mt19937_64 rng(seed);
  for (size_t left = n; left > 0; --left) {
    uint64_t r = bounded_draw(rng, left);
    size_t source = 0;
    while (r >= remaining[source]) r -= remaining[source++];
    --remaining[source];
    const size_t size = sources[source].size;
    if (read[source] % size == 0) {  // a new pass over the source
      order[source] = shuffled_indices(size, seed + 1000003 * (source + 1) + plan.passes[source]);
      ++plan.passes[source];
    }
    plan.draws.push_back({source, order[source][read[source] % size]});
    ++read[source];
  }
  return plan;
}

}  // namespace grpo
