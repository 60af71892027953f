// The per-token policy loss on hand-built ratios: clipped surrogate values and gradients inside, on and
// beyond the clip bounds for both signs of the advantage, dual clip, KL estimators, the entropy bonus,
// the on-policy gradient (μ = 1), GSPO against finite differences of its sequence-level objective, and
// β = 0 without a reference. All in float64 against values worked out here.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <string>
#include <vector>

#include "rl/grpo_objective.h"

using namespace grpo;
using torch::Tensor;

namespace {

Tensor f64(const std::vector<std::vector<double>>& rows) {
  const int64_t b = int64_t(rows.size()), t = int64_t(rows[0].size());
  Tensor out = torch::empty({b, t}, torch::kDouble);
  for (int64_t i = 0; i < b; ++i)
    for (int64_t j = 0; j < t; ++j) out[i][j] = rows[size_t(i)][size_t(j)];
  return out;
}

// Current log-probs as a leaf that collects gradients, with old log-probs 0 so that ρ = exp(logp).
struct RatioBatch {
  Tensor logp, old_logp, mask;
};

RatioBatch from_ratios(const std::vector<std::vector<double>>& ratios) {
  RatioBatch b;
  Tensor r = f64(ratios);
  b.logp = r.log().requires_grad_(true);
  b.old_logp = torch::zeros_like(r);
  b.mask = torch::ones_like(r, torch::kBool);
  return b;
}

double value_at(const Tensor& t, int64_t i, int64_t j) { return t[i][j].item<double>(); }

}  // namespace

TEST_CASE("policy loss: clipped surrogate values and zero gradients exactly where a clip is active") {
  // ε_low 0.2, ε_high 0.28 (DAPO clip-higher). Row 0 has A = +2, row 1 has A = −1.
  PolicyLossOptions options;
  options.clip_low = 0.2;
  options.clip_high = 0.28;
  const double tiny = 1e-9;
  RatioBatch b = from_ratios({{0.5, 1.0, 1.28 - tiny, 1.28 + tiny, 1.5},
                              {0.5, 0.8 - tiny, 0.8 + tiny, 1.0, 1.5}});
  const Tensor adv = torch::tensor({2.0, -1.0}, torch::kDouble);
  PerTokenLoss loss = per_token_policy_loss({b.logp, b.old_logp, adv, b.mask}, options);

  // −min(ρA, clip(ρ)A), worked by hand.
  // A > 0: below 1 − ε_low nothing is clipped (the objective still pushes ρ up); above 1 + ε_high
  // the value freezes at (1 + ε_high)·A.
  const std::vector<std::vector<double>> value = {{-1.0, -2.0, -2 * (1.28 - tiny), -2 * 1.28, -2 * 1.28},
                                                  // A < 0: below 1 − ε_low the value freezes at (1 − ε_low)·|A|;
                                                  // above 1 + ε_high nothing is clipped.
                                                  {0.8, 0.8, 0.8 + tiny, 1.0, 1.5}};
  const std::vector<std::vector<bool>> frozen = {{false, false, false, true, true}, {true, true, false, false, false}};
  // Aggregated as a plain sum, dL/dlogp = dL/dρ · ρ = −A·ρ where unclipped, 0 where clipped.
  aggregate_loss(loss.total, b.mask, LossAggregation::SeqMeanTokenSum, LossNormalizer{10, 1, 0}).backward();
  const std::vector<double> advantage = {2.0, -1.0};
  for (int64_t i = 0; i < 2; ++i)
    for (int64_t j = 0; j < 5; ++j) {
      CAPTURE(i);
      CAPTURE(j);
      const double ratio = std::exp(value_at(b.logp, i, j));
      CHECK(value_at(loss.policy, i, j) == doctest::Approx(value[size_t(i)][size_t(j)]).epsilon(1e-12));
      const double expected_grad = frozen[size_t(i)][size_t(j)] ? 0.0 : -advantage[size_t(i)] * ratio;
      CHECK(value_at(b.logp.grad(), i, j) == doctest::Approx(expected_grad).epsilon(1e-12));
      CHECK(loss.clipped_high[i][j].item<bool>() == (i == 0 && frozen[0][size_t(j)]));
      CHECK(loss.clipped_low[i][j].item<bool>() == (i == 1 && frozen[1][size_t(j)]));
    }
}

TEST_CASE("policy loss: a ratio exactly on the clip bound keeps its full gradient") {
  // ρ = exp(0) = 1 exactly, and ε = 0 puts both bounds exactly there.
  PolicyLossOptions options;
  options.clip_low = 0;
  options.clip_high = 0;
  RatioBatch b = from_ratios({{1.0, 1.0}});
  const Tensor adv = torch::tensor({-3.0}, torch::kDouble);
  PerTokenLoss loss = per_token_policy_loss({b.logp, b.old_logp, adv, b.mask}, options);
  loss.total.sum().backward();
  CHECK(value_at(b.logp.grad(), 0, 0) == doctest::Approx(3.0).epsilon(1e-15));  // −A·ρ
  CHECK(loss.clipped_low.sum().item<int64_t>() == 0);
  CHECK(loss.clipped_high.sum().item<int64_t>() == 0);
}

TEST_CASE("policy loss: dual clip bounds the loss of negative advantages at −c·A") {
  PolicyLossOptions options;
  options.dual_clip = 3.0;
  RatioBatch b = from_ratios({{2.0, 2.9, 4.0, 10.0}, {2.0, 2.9, 4.0, 10.0}});
  const Tensor adv = torch::tensor({-1.5, 1.5}, torch::kDouble);
  PerTokenLoss loss = per_token_policy_loss({b.logp, b.old_logp, adv, b.mask}, options);
  loss.total.sum().backward();
  // A = −1.5: loss = −A·ρ = 1.5ρ up to ρ = c, then c·|A| = 4.5 with no gradient.
  const std::vector<double> ratios = {2.0, 2.9, 4.0, 10.0};
  for (int64_t j = 0; j < 4; ++j) {
    CAPTURE(j);
    const bool dual = ratios[size_t(j)] > 3.0;
    CHECK(value_at(loss.policy, 0, j) == doctest::Approx(dual ? 4.5 : 1.5 * ratios[size_t(j)]).epsilon(1e-12));
    CHECK(value_at(b.logp.grad(), 0, j) == doctest::Approx(dual ? 0.0 : 1.5 * ratios[size_t(j)]).epsilon(1e-12));
    CHECK(loss.dual_clipped[0][j].item<bool>() == dual);
    // A > 0 is untouched by the dual clip: the ordinary upper clip freezes it at (1 + 0.2)·A.
    CHECK(value_at(loss.policy, 1, j) == doctest::Approx(-1.2 * 1.5).epsilon(1e-12));
    CHECK(value_at(b.logp.grad(), 1, j) == 0.0);
    CHECK_FALSE(loss.dual_clipped[1][j].item<bool>());
  }
  // Without the dual clip the same negative-advantage tokens grow without bound.
  options.dual_clip = 0;
  RatioBatch again = from_ratios({{10.0}});
  CHECK(value_at(per_token_policy_loss({again.logp, again.old_logp, torch::tensor({-1.5}, torch::kDouble), again.mask}, options)
               .policy,
           0, 0) == doctest::Approx(15.0));
}

TEST_CASE("policy loss: KL estimators k1, k2, k3 and their clamps") {
  // log π_θ and log π_ref per token; k3 = e^d − d − 1 with d = ref − logp.
  const Tensor logp = f64({{-1.0, -2.0, -0.5, -31.0, -1.0}});
  const Tensor ref = f64({{-2.0, -1.0, -0.5, -1.0, -40.0}});
  const double e = std::exp(1.0);
  struct Case {
    KlEstimator estimator;
    std::vector<double> expected;
  };
  const std::vector<Case> cases = {
      {KlEstimator::K1, {1.0, -1.0, 0.0, -30.0, 39.0}},
      {KlEstimator::K2, {0.5, 0.5, 0.0, 450.0, 760.5}},
      // d = −1: e^−1; d = 1: e − 2; d = 30 → clamped to 20, e^20 − 21 → clamped to 10;
      // d = −39 → clamped to −20: e^−20 + 19 → clamped to 10.
      {KlEstimator::K3, {1.0 / e, e - 2.0, 0.0, 10.0, 10.0}},
  };
  for (const Case& c : cases) {
    PolicyLossOptions options;
    options.kl_coef = 0.5;
    options.kl_estimator = c.estimator;
    PerTokenLoss loss = per_token_policy_loss(
        {logp, logp, torch::zeros({1}, torch::kDouble), torch::ones_like(logp, torch::kBool), ref}, options);
    REQUIRE(loss.kl.defined());
    for (int64_t j = 0; j < 5; ++j) {
      CAPTURE(j);
      CHECK(value_at(loss.kl, 0, j) == doctest::Approx(c.expected[size_t(j)]).epsilon(1e-12));
      // A = 0 and ρ = 1: the total is β·kl alone.
      CHECK(value_at(loss.total, 0, j) == doctest::Approx(0.5 * c.expected[size_t(j)]).epsilon(1e-12));
    }
  }
}

TEST_CASE("policy loss: on-policy (μ = 1) gradient is −A·∇logp + β(1 − π_ref/π_θ)·∇logp, weighted by each aggregation") {
  // DeepSeekMath App. A.1.6, eq. 21: with π_old = π_θ no clip is active and the gradient coefficient on
  // ∇log π_θ is Â + β(π_ref/π_θ − 1) for the objective J, i.e. −Â + β(1 − π_ref/π_θ) for the loss −J.
  torch::manual_seed(3);
  const int64_t B = 3, T = 4;
  const Tensor base = -torch::rand({B, T}, torch::kDouble) * 3;
  const Tensor ref = base + 0.3 * torch::randn({B, T}, torch::kDouble);
  const Tensor mask = f64({{1, 1, 1, 0}, {1, 0, 0, 0}, {1, 1, 1, 1}}).to(torch::kBool);
  const Tensor adv = torch::tensor({0.7, -1.1, 0.25}, torch::kDouble);
  const double beta = 0.04, max_length = 6;
  const std::vector<int64_t> lengths = {3, 1, 4};

  for (LossAggregation mode : {LossAggregation::TokenMean, LossAggregation::SeqMeanTokenMean,
                               LossAggregation::SeqMeanTokenSum, LossAggregation::SeqMeanTokenSumNorm}) {
    CAPTURE(int(mode));
    Tensor logp = base.clone().requires_grad_(true);
    ObjectiveOptions options;
    options.policy.kl_coef = beta;
    options.aggregation = mode;
    MicroBatchLoss loss = grpo_loss({logp, logp.detach(), adv, mask, ref}, options, LossNormalizer::count(mask, max_length));
    loss.loss.backward();
    CHECK(loss.stats.ratio_min == 1.0);
    CHECK(loss.stats.ratio_max == 1.0);
    for (int64_t i = 0; i < B; ++i)
      for (int64_t t = 0; t < T; ++t) {
        CAPTURE(i);
        CAPTURE(t);
        double weight = 0;  // ∂(aggregate)/∂(per-token loss), by hand
        if (t < lengths[size_t(i)]) {
          if (mode == LossAggregation::TokenMean) weight = 1.0 / 8;
          if (mode == LossAggregation::SeqMeanTokenMean) weight = 1.0 / (3.0 * lengths[size_t(i)]);
          if (mode == LossAggregation::SeqMeanTokenSum) weight = 1.0 / 3;
          if (mode == LossAggregation::SeqMeanTokenSumNorm) weight = 1.0 / (3 * max_length);
        }
        const double coefficient =
            -adv[i].item<double>() + beta * (1.0 - std::exp(value_at(ref, i, t) - value_at(base, i, t)));
        CHECK(value_at(logp.grad(), i, t) == doctest::Approx(weight * coefficient).epsilon(1e-12));
      }
  }
}

TEST_CASE("policy loss: GSPO gradient equals finite differences of the sequence-level objective") {
  // J(logp) = (1/G) Σ_i −min(s_i A_i, clip(s_i, 1−ε_low, 1+ε_high) A_i),  s_i = exp(mean_t (logp − old))
  // over each sequence's valid tokens, written here with plain loops.
  torch::manual_seed(11);
  const int64_t B = 3, T = 5;
  const Tensor old_logp = -torch::rand({B, T}, torch::kDouble) * 2;
  Tensor shift = 0.05 * torch::randn({B, T}, torch::kDouble);
  shift[2] += 0.4;  // sequence 2 moves far enough for its ratio to leave the clip range
  const Tensor base = old_logp + shift;
  const Tensor mask = f64({{1, 1, 1, 1, 0}, {1, 1, 0, 0, 0}, {1, 1, 1, 1, 1}}).to(torch::kBool);
  const std::vector<double> adv = {1.0, -0.7, 0.3};
  PolicyLossOptions policy;
  policy.ratio_level = RatioLevel::Sequence;
  policy.clip_low = 0.2;
  policy.clip_high = 0.28;

  auto objective = [&](const Tensor& logp) {
    double total = 0;
    for (int64_t i = 0; i < B; ++i) {
      double sum = 0, n = 0;
      for (int64_t t = 0; t < T; ++t)
        if (mask[i][t].item<bool>()) sum += value_at(logp, i, t) - value_at(old_logp, i, t), n += 1;
      const double s = std::exp(sum / n), a = adv[size_t(i)];
      total += -std::min(s * a, std::clamp(s, 0.8, 1.28) * a);
    }
    return total / B;
  };

  Tensor logp = base.clone().requires_grad_(true);
  ObjectiveOptions options{policy, LossAggregation::SeqMeanTokenMean};
  MicroBatchLoss loss = grpo_loss({logp, old_logp, torch::tensor(adv, torch::kDouble), mask}, options,
                                  LossNormalizer::count(mask));
  CHECK(loss.loss.item<double>() == doctest::Approx(objective(base)).epsilon(1e-12));
  loss.loss.backward();

  const double h = 1e-6;  // central differences: truncation ~h², rounding ~1e-16/h, both far below 1e-9
  for (int64_t i = 0; i < B; ++i)
    for (int64_t t = 0; t < T; ++t) {
      CAPTURE(i);
      CAPTURE(t);
      Tensor up = base.clone(), down = base.clone();
      up[i][t] += h;
      down[i][t] -= h;
      const double numeric = (objective(up) - objective(down)) / (2 * h);
      CHECK(std::abs(value_at(logp.grad(), i, t) - numeric) <= 1e-7 * std::abs(numeric) + 1e-9);
      if (!mask[i][t].item<bool>()) CHECK(value_at(logp.grad(), i, t) == 0.0);
    }
  // Sequence 2 is beyond 1 + ε_high with A > 0: all five of its tokens count as clipped, gradient 0.
  CHECK(loss.stats.clipped_high == 5);
  for (int64_t t = 0; t < T; ++t) CHECK(value_at(logp.grad(), 2, t) == 0.0);
  CHECK(value_at(logp.grad(), 0, 0) != 0.0);
}

TEST_CASE("policy loss: entropy bonus subtracts coef·H and reaches the entropy's graph") {
  RatioBatch b = from_ratios({{1.0, 1.0, 1.0}});
  Tensor entropy = torch::tensor({{0.5, 2.0, 9.0}}, torch::kDouble).requires_grad_(true);
  const Tensor mask = torch::tensor({{1, 1, 0}}, torch::kBool);
  PolicyLossOptions options;
  options.entropy_coef = 0.01;
  PerTokenLoss loss =
      per_token_policy_loss({b.logp, b.old_logp, torch::zeros({1}, torch::kDouble), mask, {}, entropy}, options);
  CHECK(value_at(loss.total, 0, 0) == doctest::Approx(-0.005));
  CHECK(value_at(loss.total, 0, 1) == doctest::Approx(-0.02));
  CHECK(value_at(loss.total, 0, 2) == 0.0);  // masked
  loss.total.sum().backward();
  CHECK(entropy.grad()[0][0].item<double>() == doctest::Approx(-0.01));
  CHECK(entropy.grad()[0][2].item<double>() == 0.0);
}

TEST_CASE("policy loss: beta = 0 needs no reference; beta > 0 without one is an error naming it") {
  RatioBatch b = from_ratios({{0.9, 1.1}});
  const Tensor adv = torch::tensor({1.0}, torch::kDouble);
  ObjectiveOptions options;
  MicroBatchLoss loss = grpo_loss({b.logp, b.old_logp, adv, b.mask}, options, LossNormalizer::count(b.mask));
  CHECK(loss.loss.item<double>() == doctest::Approx(-(0.9 + 1.1) / 2).epsilon(1e-12));
  for (const auto& [name, value] : loss.stats.metrics()) CHECK(name != "kl");
  CHECK_FALSE(loss.stats.has_ref_kl);

  options.policy.kl_coef = 0.001;
  CHECK_THROWS_WITH_AS(grpo_loss({b.logp, b.old_logp, adv, b.mask}, options, LossNormalizer::count(b.mask)),
                       doctest::Contains("ref_logp"), std::invalid_argument);
}

TEST_CASE("policy loss: shape and option errors name what is wrong") {
  RatioBatch b = from_ratios({{1.0, 1.0}, {1.0, 1.0}});
  PolicyLossOptions options;
  CHECK_THROWS_WITH_AS(per_token_policy_loss({b.logp, b.old_logp, torch::zeros({3}), b.mask}, options),
                       doctest::Contains("advantages must be [2]"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(per_token_policy_loss({b.logp, b.old_logp.narrow(1, 0, 1), torch::zeros({2}), b.mask}, options),
                       doctest::Contains("old_logp"), std::invalid_argument);
  options.dual_clip = 0.5;
  CHECK_THROWS_WITH_AS(per_token_policy_loss({b.logp, b.old_logp, torch::zeros({2}), b.mask}, options),
                       doctest::Contains("dual_clip"), std::invalid_argument);
}

TEST_CASE("policy loss: statistics count clip activity, ratios and KL over valid tokens only") {
  // Row 0 (A = +1): ρ = 0.5, 1.5 (high clip), [masked 9.0]; row 1 (A = −1): ρ = 0.5 (low clip), 4.0 (dual).
  RatioBatch b = from_ratios({{0.5, 1.5, 9.0}, {0.5, 4.0, 1.0}});
  const Tensor mask = torch::tensor({{1, 1, 0}, {1, 1, 0}}, torch::kBool);
  Tensor ref = b.logp.detach() - 0.1;  // k3 with d = −0.1 at every token: e^−0.1 + 0.1 − 1
  ObjectiveOptions options;
  options.policy.dual_clip = 3;
  options.policy.kl_coef = 0.1;
  MicroBatchLoss loss =
      grpo_loss({b.logp, b.old_logp, torch::tensor({1.0, -1.0}, torch::kDouble), mask, ref}, options,
                LossNormalizer::count(mask));
  const LossStats& s = loss.stats;
  CHECK(s.tokens == 4);
  CHECK(s.clipped_low == 1);
  CHECK(s.clipped_high == 1);
  CHECK(s.dual_clipped == 1);
  CHECK(s.ratio_min == doctest::Approx(0.5));
  CHECK(s.ratio_max == doctest::Approx(4.0));  // the masked 9.0 is not seen
  CHECK(s.ratio_sum == doctest::Approx(6.5));
  // approx_kl = mean(log π_old − log π_θ) = −mean(log ρ)
  const double approx_kl = -(std::log(0.5) + std::log(1.5) + std::log(0.5) + std::log(4.0)) / 4;
  const double k3 = std::exp(-0.1) + 0.1 - 1;
  // pg per token: −0.5, −1.2, 0.8·(−(−1))... : row 1 ρ=0.5 → frozen at 0.8; ρ=4 → dual 3.
  const double pg = (-0.5 - 1.2 + 0.8 + 3.0) / 4;
  std::map<std::string, double> m;
  for (const auto& [name, value] : s.metrics()) m[name] = value;
  CHECK(m.at("approx_kl") == doctest::Approx(approx_kl).epsilon(1e-12));
  CHECK(m.at("kl") == doctest::Approx(k3).epsilon(1e-12));
  CHECK(m.at("kl_loss") == doctest::Approx(0.1 * k3).epsilon(1e-12));
  CHECK(m.at("pg_loss") == doctest::Approx(pg).epsilon(1e-12));
  CHECK(m.at("clip_ratio/low_mean") == 0.25);
  CHECK(m.at("clip_ratio/high_mean") == 0.25);
  CHECK(m.at("clip_ratio/region_mean") == 0.5);
  CHECK(m.at("clip_ratio/dual_mean") == 0.25);
  CHECK(m.at("ratio/mean") == doctest::Approx(6.5 / 4));
  CHECK(loss.loss.item<double>() == doctest::Approx(pg + 0.1 * k3).epsilon(1e-12));
}

TEST_CASE("policy loss: float32 inputs with a 0/1 float mask agree with float64 to float precision") {
  torch::manual_seed(17);
  const Tensor base = -torch::rand({4, 9}, torch::kDouble) * 4;
  const Tensor old_logp = base + 0.2 * torch::randn({4, 9}, torch::kDouble);
  const Tensor ref_logp = base + 0.2 * torch::randn({4, 9}, torch::kDouble);
  const Tensor mask = (torch::rand({4, 9}) < 0.7).to(torch::kDouble);
  const Tensor adv = torch::randn({4}, torch::kDouble);  // float64, as group_advantages returns them
  ObjectiveOptions options;
  options.policy.kl_coef = 0.04;
  options.aggregation = LossAggregation::SeqMeanTokenMean;
  const LossNormalizer n = LossNormalizer::count(mask);

  Tensor logp64 = base.clone().requires_grad_(true);
  MicroBatchLoss l64 = grpo_loss({logp64, old_logp, adv, mask, ref_logp}, options, n);
  l64.loss.backward();
  Tensor logp32 = base.to(torch::kFloat).requires_grad_(true);
  MicroBatchLoss l32 = grpo_loss({logp32, old_logp.to(torch::kFloat), adv, mask.to(torch::kFloat), ref_logp.to(torch::kFloat)},
                                 options, n);
  l32.loss.backward();
  CHECK((l32.loss.scalar_type() == torch::kFloat));
  CHECK(l32.loss.item<double>() == doctest::Approx(l64.loss.item<double>()).epsilon(1e-5));
  CHECK((logp32.grad().to(torch::kDouble) - logp64.grad()).abs().max().item<double>() <= 1e-6);
  CHECK(l32.stats.tokens == l64.stats.tokens);
}

TEST_CASE("policy loss: statistics of a micro-batch with no valid token leave the totals unchanged") {
  RatioBatch b = from_ratios({{0.5, 2.0}});
  const Tensor adv = torch::tensor({1.0}, torch::kDouble);
  const Tensor none = torch::zeros({1, 2}, torch::kBool);
  LossStats total = grpo_loss({b.logp, b.old_logp, adv, b.mask}, ObjectiveOptions{}, LossNormalizer::count(b.mask)).stats;
  const LossStats empty = grpo_loss({b.logp, b.old_logp, adv, none}, ObjectiveOptions{}, LossNormalizer::count(b.mask)).stats;
  CHECK(empty.tokens == 0);
  total += empty;
  CHECK(total.tokens == 2);
  CHECK(total.ratio_min == doctest::Approx(0.5));
  CHECK(total.ratio_max == doctest::Approx(2.0));
  LossStats fresh;
  fresh += total;  // merging into an empty total takes the other's extremes
  CHECK(fresh.ratio_min == doctest::Approx(0.5));
  CHECK(fresh.ratio_max == doctest::Approx(2.0));
}
