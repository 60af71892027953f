// grpo.mix's order (rl/experiment/dataset_mix.h): exact counts by largest remainder, worked by hand;
// the interleaving and the per-source passes recomputed here from the documented recipe with a plain
// mt19937_64, so the order is the documented one on every machine; determinism and repetition.
#include <doctest/doctest.h>

#include <algorithm>
#include <limits>
#include <map>
#include <random>
#include <set>
#include <stdexcept>

#include "rl/experiment/dataset_mix.h"
#include "rl/experiment/dataset_split.h"

using namespace grpo;

TEST_CASE("mix counts: floor of each share, the rest to the largest remainders") {
  // n = 10, weights 0.7 / 0.3: exactly 7 and 3.
  CHECK(mix_counts({{100, 0.7}, {100, 0.3}}, 10) == std::vector<size_t>{7, 3});
  // n = 10, weights 1 / 1 / 1: 3.33 each -> 3, 3, 3 and the one left to the first (equal remainders).
  CHECK(mix_counts({{5, 1}, {5, 1}, {5, 1}}, 10) == std::vector<size_t>{4, 3, 3});
  // n = 7, weights 5 / 3 / 2: 3.5, 2.1, 1.4 -> 3, 2, 1 and one left: largest remainder 0.5 (source 1).
  CHECK(mix_counts({{9, 5}, {9, 3}, {9, 2}}, 7) == std::vector<size_t>{4, 2, 1});
  CHECK_THROWS_AS(mix_counts({}, 3), std::invalid_argument);
  CHECK_THROWS_AS(mix_counts({{0, 1}}, 3), std::invalid_argument);
  CHECK_THROWS_AS(mix_counts({{3, 0}}, 3), std::invalid_argument);
  CHECK_THROWS_AS(mix_counts({{3, -1}}, 3), std::invalid_argument);
}

TEST_CASE("the default mix size is the largest at which no source repeats") {
  // 70 and 10 records at 0.7 / 0.3. n = 35: 24.5 -> 24 and 10.5 -> 10, the one left to the first of the
  // equal remainders: 25 and 10, which fit. n = 36: 25.2 and 10.8 -> 25, 10 + 1 = 11 > 10. From n = 37
  // on the second source's floor alone is 11 or more.
  const std::vector<MixSource> sources = {{70, 0.7}, {10, 0.3}};
  CHECK(largest_mix_without_repeats(sources) == 35);
  CHECK(mix_counts(sources, 35) == std::vector<size_t>{25, 10});
  CHECK(mix_counts(sources, 36) == std::vector<size_t>{25, 11});
  CHECK(largest_mix_without_repeats({{4, 1}, {4, 1}}) == 8);
  CHECK(largest_mix_without_repeats({{1, 1}}) == 1);
}

TEST_CASE("the mix order is the documented recipe: a seeded draw of sources, a shuffled cursor per source") {
  const std::vector<MixSource> sources = {{5, 2}, {3, 1}};
  const size_t n = 9;  // counts 6 and 3: source 0 is read in two passes
  const uint64_t seed = 42;
  const MixPlan plan = plan_mix(sources, n, seed);
  REQUIRE(plan.draws.size() == n);
  CHECK(plan.counts == std::vector<size_t>{6, 3});
  CHECK(plan.passes == std::vector<size_t>{2, 1});

  // The recipe, written out independently.
  std::mt19937_64 rng(seed);
  std::vector<size_t> remaining = {6, 3}, read = {0, 0};
  std::map<std::pair<size_t, size_t>, std::vector<size_t>> pass_orders;
  for (size_t position = 0; position < n; ++position) {
    const uint64_t m = remaining[0] + remaining[1];
    const uint64_t limit = std::numeric_limits<uint64_t>::max() - std::numeric_limits<uint64_t>::max() % m;
    uint64_t r = rng();
    while (r >= limit) r = rng();
    r %= m;
    const size_t source = r < remaining[0] ? 0 : 1;
    --remaining[source];
    const size_t pass = read[source] / sources[source].size;
    auto key = std::make_pair(source, pass);
    if (!pass_orders.count(key)) pass_orders[key] = shuffled_indices(sources[source].size, seed + 1000003 * (source + 1) + pass);
    const size_t record = pass_orders[key][read[source] % sources[source].size];
    ++read[source];
    CHECK(plan.draws[position].source == source);
    CHECK(plan.draws[position].record == record);
  }
  // Every record of a source appears once per full pass: source 1's three draws are its three records.
  std::set<size_t> second;
  for (const MixDraw& d : plan.draws)
    if (d.source == 1) second.insert(d.record);
  CHECK(second == std::set<size_t>{0, 1, 2});
}

TEST_CASE("the mix is deterministic for a seed, differs across seeds, and keeps proportions at scale") {
  const std::vector<MixSource> sources = {{300, 0.7}, {200, 0.3}};
  const MixPlan a = plan_mix(sources, 400, 7), b = plan_mix(sources, 400, 7), c = plan_mix(sources, 400, 8);
  bool same = true, differs = false;
  for (size_t i = 0; i < 400; ++i) {
    same = same && a.draws[i].source == b.draws[i].source && a.draws[i].record == b.draws[i].record;
    differs = differs || a.draws[i].source != c.draws[i].source || a.draws[i].record != c.draws[i].record;
  }
  CHECK(same);
  CHECK(differs);
  // 280 / 120 overall; interleaved, not blocked: the first 100 draws already hold both sources.
  size_t first_source = 0, early = 0;
  for (size_t i = 0; i < 400; ++i) first_source += a.draws[i].source == 0;
  for (size_t i = 0; i < 100; ++i) early += a.draws[i].source == 0;
  CHECK(first_source == 280);
  CHECK(early > 50);
  CHECK(early < 90);
  // No repetition within a pass: 280 draws of 300 records are 280 different records.
  std::set<size_t> distinct;
  for (const MixDraw& d : a.draws)
    if (d.source == 0) distinct.insert(d.record);
  CHECK(distinct.size() == 280);
}
