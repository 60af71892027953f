// Loss aggregation modes: hand-worked values, and the property the trainer relies on — a minibatch
// processed whole and the same minibatch split into uneven micro-batches with gradient accumulation give
// the same gradient (float64, 1e-12), for every mode, token and sequence ratios, with dual clip, KL and
// entropy all active.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "rl/grpo_objective.h"
#include "test_constants.h"

using namespace grpo;
using torch::Tensor;

using test::kNaN;

namespace {

const std::vector<LossAggregation> kModes = {LossAggregation::TokenMean, LossAggregation::SeqMeanTokenMean,
                                             LossAggregation::SeqMeanTokenSum, LossAggregation::SeqMeanTokenSumNorm};

}  // namespace

TEST_CASE("aggregation: each mode on a hand-worked 2 x 3 batch") {
  // Row 0 counts tokens 0, 1 (sum 3, mean 1.5); row 1 counts token 0 (sum 4). Masked entries hold NaN
  // and 100 to show they never leak into the result.
  const Tensor loss = torch::tensor({{1.0, 2.0, kNaN}, {4.0, 100.0, 6.0}}, torch::kDouble);
  const Tensor mask = torch::tensor({{1, 1, 0}, {1, 0, 0}}, torch::kBool);
  const LossNormalizer n = LossNormalizer::count(mask, /*max_length=*/4);
  CHECK(n.tokens == 3);
  CHECK(n.sequences == 2);
  CHECK(aggregate_loss(loss, mask, LossAggregation::TokenMean, n).item<double>() == doctest::Approx(7.0 / 3));
  CHECK(aggregate_loss(loss, mask, LossAggregation::SeqMeanTokenMean, n).item<double>() == doctest::Approx((1.5 + 4) / 2));
  CHECK(aggregate_loss(loss, mask, LossAggregation::SeqMeanTokenSum, n).item<double>() == doctest::Approx((3.0 + 4) / 2));
  CHECK(aggregate_loss(loss, mask, LossAggregation::SeqMeanTokenSumNorm, n).item<double>() ==
        doctest::Approx((3.0 + 4) / (2 * 4)));
}

TEST_CASE("aggregation: empty sequences are not counted; an empty minibatch gives 0, not NaN") {
  const Tensor loss = torch::tensor({{2.0, 2.0}, {5.0, 5.0}}, torch::kDouble);
  const Tensor mask = torch::tensor({{1, 1}, {0, 0}}, torch::kBool);
  const LossNormalizer n = LossNormalizer::count(mask);
  CHECK(n.sequences == 1);
  CHECK(aggregate_loss(loss, mask, LossAggregation::SeqMeanTokenMean, n).item<double>() == doctest::Approx(2.0));
  const Tensor none = torch::zeros({2, 2}, torch::kBool);
  for (LossAggregation mode : {LossAggregation::TokenMean, LossAggregation::SeqMeanTokenMean, LossAggregation::SeqMeanTokenSum}) {
    CAPTURE(int(mode));
    CHECK(aggregate_loss(loss, none, mode, LossNormalizer::count(none)).item<double>() == 0.0);
  }
}

TEST_CASE("aggregation: Dr. GRPO mode without a constant length is an error") {
  const Tensor loss = torch::ones({1, 2}, torch::kDouble), mask = torch::ones({1, 2}, torch::kBool);
  CHECK_THROWS_WITH_AS(aggregate_loss(loss, mask, LossAggregation::SeqMeanTokenSumNorm, LossNormalizer::count(mask)),
                       doctest::Contains("max_length"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(aggregate_loss(loss, torch::ones({2, 2}), LossAggregation::TokenMean, LossNormalizer{}),
                       doctest::Contains("mask must have shape"), std::invalid_argument);
}

TEST_CASE("aggregation: whole minibatch and 3 uneven micro-batches give the same gradient and statistics") {
  torch::manual_seed(5);
  const int64_t B = 7, T = 6;
  // Lengths 6, 3, 1, 0 (a fully masked sample, e.g. DAPO overlong filtering), 5, 2, 4.
  const std::vector<int64_t> lengths = {6, 3, 1, 0, 5, 2, 4};
  Tensor mask = torch::zeros({B, T}, torch::kBool);
  for (int64_t i = 0; i < B; ++i) mask[i].narrow(0, 0, lengths[size_t(i)]).fill_(true);
  const Tensor base = -torch::rand({B, T}, torch::kDouble) * 3 - 0.05;
  const Tensor old_logp = base + 0.3 * torch::randn({B, T}, torch::kDouble);  // some ratios leave the clip range
  const Tensor ref_logp = base + 0.2 * torch::randn({B, T}, torch::kDouble);
  const Tensor advantages = torch::randn({B}, torch::kDouble);
  const std::vector<std::pair<int64_t, int64_t>> micro_batches = {{0, 2}, {2, 1}, {3, 4}};  // (start, size)

  for (RatioLevel level : {RatioLevel::Token, RatioLevel::Sequence})
    for (LossAggregation mode : kModes) {
      CAPTURE(int(level));
      CAPTURE(int(mode));
      ObjectiveOptions options;
      options.aggregation = mode;
      options.policy.ratio_level = level;
      options.policy.clip_high = 0.28;
      options.policy.dual_clip = 3;
      options.policy.kl_coef = 0.04;
      options.policy.entropy_coef = 0.01;
      const LossNormalizer normalizer = LossNormalizer::count(mask, /*max_length=*/T);

      // The entropy is a function of the policy too (here H = −p log p per token), so its gradient
      // path is exercised: whatever the trainer feeds must accumulate the same way.
      auto loss_of = [&](const Tensor& logp_all, int64_t start, int64_t size) {
        const Tensor logp = logp_all.narrow(0, start, size);
        PolicyLossInputs in{logp,
                            old_logp.narrow(0, start, size),
                            advantages.narrow(0, start, size),
                            mask.narrow(0, start, size),
                            ref_logp.narrow(0, start, size),
                            -logp.exp() * logp};
        return grpo_loss(in, options, normalizer);
      };

      Tensor whole = base.clone().requires_grad_(true);
      MicroBatchLoss full = loss_of(whole, 0, B);
      full.loss.backward();

      Tensor split = base.clone().requires_grad_(true);
      LossStats summed;
      double loss_sum = 0;
      for (auto [start, size] : micro_batches) {
        MicroBatchLoss part = loss_of(split, start, size);
        part.loss.backward();  // accumulates into split.grad()
        summed += part.stats;
        loss_sum += part.loss.item<double>();
      }

      CHECK(loss_sum == doctest::Approx(full.loss.item<double>()).epsilon(1e-12));
      CHECK((whole.grad() - split.grad()).abs().max().item<double>() <= 1e-12);
      CHECK(whole.grad().abs().sum().item<double>() > 0);
      CHECK(split.grad()[3].abs().sum().item<double>() == 0.0);  // the fully masked sample
      CHECK(summed.tokens == full.stats.tokens);
      CHECK(summed.clipped_low == full.stats.clipped_low);
      CHECK(summed.clipped_high == full.stats.clipped_high);
      CHECK(summed.dual_clipped == full.stats.dual_clipped);
      CHECK(summed.ratio_min == full.stats.ratio_min);
      CHECK(summed.ratio_max == full.stats.ratio_max);
      CHECK(summed.policy_loss == doctest::Approx(full.stats.policy_loss).epsilon(1e-12));
      CHECK(summed.kl_loss == doctest::Approx(full.stats.kl_loss).epsilon(1e-12));
      CHECK(summed.entropy_loss == doctest::Approx(full.stats.entropy_loss).epsilon(1e-12));
      CHECK(summed.policy_loss + summed.kl_loss + summed.entropy_loss == doctest::Approx(loss_sum).epsilon(1e-12));
      if (level == RatioLevel::Token) CHECK(full.stats.clipped_low + full.stats.clipped_high > 0);
    }
}
