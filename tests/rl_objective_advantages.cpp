// Group-relative advantages against hand-worked groups: GRPO (unbiased and population std), Dr. GRPO,
// TRL's batch std, a group of one, zero-variance groups, and bad input.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "rl/grpo_objective.h"
#include "test_constants.h"

using namespace grpo;
using torch::Tensor;

using test::kNaN;

namespace {

// Four prompts, interleaved as a shuffled batch would deliver them:
//   group 7: rewards 1, 0, 0, 1   mean 0.5, unbiased std sqrt(1/3), population std 0.5
//   group 3: reward 2             a group of one
//   group 5: 0.1, 0.1, 0.1        all equal (their float64 mean is not exactly 0.1)
//   group 9: 0, 3                 mean 1.5, unbiased std sqrt(4.5), population std 1.5
const std::vector<double> kRewards = {1, 2, 0, 0.1, 0, 0, 0.1, 1, 3, 0.1};
const std::vector<int64_t> kGroups = {7, 3, 7, 5, 9, 7, 5, 7, 9, 5};

Tensor example_rewards() { return torch::tensor(kRewards, torch::kDouble); }
Tensor example_groups() { return torch::tensor(kGroups, torch::kLong); }

void check_advantages(const Tensor& got, const std::vector<double>& expected) {
  REQUIRE(got.dim() == 1);
  REQUIRE(got.size(0) == int64_t(expected.size()));
  CHECK((got.scalar_type() == torch::kDouble));
  for (size_t i = 0; i < expected.size(); ++i) {
    CAPTURE(i);
    CHECK(got[int64_t(i)].item<double>() == doctest::Approx(expected[i]).epsilon(1e-14));
  }
}

}  // namespace

TEST_CASE("advantages: GRPO divides by the unbiased group std plus eps") {
  const double eps = 1e-6;
  const double a7 = 0.5 / (std::sqrt(1.0 / 3.0) + eps);  // |r − 0.5| / (std + eps)
  const double a9 = 1.5 / (std::sqrt(4.5) + eps);
  GroupAdvantages out = group_advantages(example_rewards(), example_groups());
  check_advantages(out.advantages, {a7, 0, -a7, 0, -a9, -a7, 0, a7, a9, 0});

  REQUIRE(out.groups.size() == 4);
  CHECK(out.groups[0].group_id == 7);
  CHECK(out.groups[0].size == 4);
  CHECK(out.groups[0].mean == doctest::Approx(0.5));
  CHECK(out.groups[0].std == doctest::Approx(std::sqrt(1.0 / 3.0)));
  CHECK(out.groups[3].group_id == 9);
  CHECK(out.groups[3].std == doctest::Approx(std::sqrt(4.5)));
}

TEST_CASE("advantages: population std is selectable") {
  AdvantageOptions options;
  options.std_estimator = StdEstimator::Population;
  options.eps = 1e-4;
  const double a7 = 0.5 / (0.5 + 1e-4), a9 = 1.5 / (1.5 + 1e-4);
  check_advantages(group_advantages(example_rewards(), example_groups(), options).advantages, {a7, 0, -a7, 0, -a9, -a7, 0, a7, a9, 0});
}

TEST_CASE("advantages: Dr. GRPO subtracts the group mean only") {
  AdvantageOptions options;
  options.scaling = AdvantageScaling::None;
  check_advantages(group_advantages(example_rewards(), example_groups(), options).advantages,
                   {0.5, 0, -0.5, 0, -1.5, -0.5, 0, 0.5, 1.5, 0});
}

TEST_CASE("advantages: batch scaling divides by the std of every reward in the batch") {
  AdvantageOptions options;
  options.scaling = AdvantageScaling::Batch;
  double mean = 0, squares = 0;
  for (double r : kRewards) mean += r / kRewards.size();
  for (double r : kRewards) squares += (r - mean) * (r - mean);
  const double scale = 1.0 / (std::sqrt(squares / (kRewards.size() - 1)) + 1e-6);
  check_advantages(group_advantages(example_rewards(), example_groups(), options).advantages,
                   {0.5 * scale, 0, -0.5 * scale, 0, -1.5 * scale, -0.5 * scale, 0, 0.5 * scale, 1.5 * scale, 0});
}

TEST_CASE("advantages: a group of one and equal-reward groups give exactly zero and are reported") {
  for (AdvantageScaling scaling : {AdvantageScaling::Group, AdvantageScaling::Batch, AdvantageScaling::None}) {
    AdvantageOptions options;
    options.scaling = scaling;
    GroupAdvantages out = group_advantages(example_rewards(), example_groups(), options);
    for (int64_t i : {1, 3, 6, 9}) {
      CAPTURE(i);
      CHECK(out.advantages[i].item<double>() == 0.0);  // exact, not a rounding residue
    }
    CHECK(out.zero_variance_groups() == std::vector<int64_t>{3, 5});
    CHECK(out.groups[1].size == 1);
    CHECK(out.groups[1].zero_variance);
    CHECK(out.groups[2].zero_variance);
    CHECK_FALSE(out.groups[0].zero_variance);
  }
}

TEST_CASE("advantages: float32 rewards on any group ids are accepted; a batch of one group sums to zero") {
  Tensor r = torch::tensor({0.25f, 1.0f, 0.0f, 0.75f});
  Tensor g = torch::tensor({-4, -4, -4, -4}, torch::kInt);
  Tensor a = group_advantages(r, g).advantages;
  CHECK(a.sum().item<double>() == doctest::Approx(0.0).epsilon(1e-15));
  // mean 0.5, deviations ±0.25, ±0.5: unbiased std sqrt((2·0.0625 + 2·0.25)/3)
  const double std = std::sqrt((2 * 0.0625 + 2 * 0.25) / 3);
  CHECK(a[1].item<double>() == doctest::Approx(0.5 / (std + 1e-6)));
}

TEST_CASE("advantages: bad input is rejected with the place named") {
  CHECK_THROWS_WITH_AS(group_advantages(torch::tensor({1.0, kNaN, 0.0}), torch::tensor({0, 0, 1})),
                       doctest::Contains("reward 1 is not finite"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(group_advantages(torch::tensor({1.0, 0.0}), torch::tensor({0, 0, 1})),
                       doctest::Contains("group_ids must have the shape of rewards"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(group_advantages(torch::tensor({1.0, 0.0}), torch::tensor({0.0, 1.0})),
                       doctest::Contains("integer"), std::invalid_argument);
  AdvantageOptions negative;
  negative.eps = -1;
  CHECK_THROWS_WITH_AS(group_advantages(example_rewards(), example_groups(), negative), doctest::Contains("eps"), std::invalid_argument);
}
