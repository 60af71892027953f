// AdamW construction (weight-decay groups), one update against the AdamW formula worked by hand,
// gradient clipping returning the pre-clip norm, learning-rate updates, and the float32 master
// weights PolicyOptimizer keeps for a bf16 model.
#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>
#include <limits>
#include <stdexcept>

#include "rl/optimizer.h"
#include "rl/policy_optimizer.h"
#include "test_constants.h"

using namespace grpo;
using torch::Tensor;

using test::kNaN;

namespace {

struct TwoParameters {
  Tensor matrix = torch::tensor({{1.0, -2.0}, {0.5, 3.0}}, torch::kDouble).requires_grad_(true);
  Tensor vector = torch::tensor({4.0, -1.0}, torch::kDouble).requires_grad_(true);
  void set_gradients(const Tensor& gm, const Tensor& gv) {
    matrix.mutable_grad() = gm.clone();
    vector.mutable_grad() = gv.clone();
  }
};

}  // namespace

TEST_CASE("optimizer: one AdamW step decays matrices only and moves each weight by lr·g/(|g| + eps)") {
  TwoParameters p;
  const Tensor m0 = p.matrix.detach().clone(), v0 = p.vector.detach().clone();
  const Tensor gm = torch::tensor({{0.3, -0.1}, {0.0, 2.0}}, torch::kDouble);
  const Tensor gv = torch::tensor({-0.5, 0.25}, torch::kDouble);
  AdamWSettings s;
  s.lr = 0.1;
  s.weight_decay = 0.5;
  auto adamw = make_adamw({p.matrix, p.vector}, s);
  REQUIRE(adamw->param_groups().size() == 2);
  p.set_gradients(gm, gv);
  adamw->step();
  // First step: bias-corrected moments are g and g², so the Adam direction is g / (|g| + eps);
  // decoupled decay multiplies the weight by (1 − lr·wd) first.
  for (int64_t i = 0; i < 2; ++i)
    for (int64_t j = 0; j < 2; ++j) {
      const double g = gm[i][j].item<double>();
      const double expected = m0[i][j].item<double>() * (1 - 0.1 * 0.5) - 0.1 * g / (std::abs(g) + 1e-8);
      CHECK(p.matrix[i][j].item<double>() == doctest::Approx(expected).epsilon(1e-12));
    }
  for (int64_t j = 0; j < 2; ++j) {
    const double g = gv[j].item<double>();
    CHECK(p.vector[j].item<double>() == doctest::Approx(v0[j].item<double>() - 0.1 * g / (std::abs(g) + 1e-8)).epsilon(1e-12));
  }
}

TEST_CASE("optimizer: decay_vectors puts every parameter in one decayed group; bad settings throw") {
  TwoParameters p;
  AdamWSettings s;
  s.decay_vectors = true;
  CHECK(make_adamw({p.matrix, p.vector}, s)->param_groups().size() == 1);
  s.beta2 = 1.0;
  CHECK_THROWS_WITH_AS(make_adamw({p.matrix}, s), doctest::Contains("beta2"), std::invalid_argument);
}

TEST_CASE("optimizer: clip_gradients returns the norm before clipping and scales to max_norm") {
  TwoParameters p;
  const Tensor gm = torch::tensor({{3.0, 0.0}, {0.0, 0.0}}, torch::kDouble);
  const Tensor gv = torch::tensor({0.0, 4.0}, torch::kDouble);
  p.set_gradients(gm, gv);
  CHECK(clip_gradients({p.matrix, p.vector}, /*max_norm=*/1.0) == doctest::Approx(5.0));  // √(3² + 4²)
  CHECK(p.matrix.grad()[0][0].item<double>() == doctest::Approx(3.0 / (5.0 + 1e-6)));
  CHECK(p.vector.grad()[1].item<double>() == doctest::Approx(4.0 / (5.0 + 1e-6)));

  p.set_gradients(gm, gv);
  CHECK(clip_gradients({p.matrix, p.vector}, /*max_norm=*/10.0) == doctest::Approx(5.0));
  CHECK(p.vector.grad()[1].item<double>() == doctest::Approx(4.0));  // under the limit: untouched
  CHECK(clip_gradients({p.matrix, p.vector}, /*max_norm=*/0) == doctest::Approx(5.0));

  p.set_gradients(gm, torch::tensor({kNaN, 4.0}, torch::kDouble));
  CHECK_FALSE(std::isfinite(clip_gradients({p.matrix, p.vector}, 1.0)));
}

TEST_CASE("optimizer: set_learning_rate reaches every group and the next step uses it") {
  TwoParameters p;
  auto adamw = make_adamw({p.matrix, p.vector}, AdamWSettings{});
  set_learning_rate(*adamw, 0.25);
  for (auto& group : adamw->param_groups()) CHECK(group.options().get_lr() == 0.25);
  const double before = p.vector[0].item<double>();
  p.set_gradients(torch::ones({2, 2}, torch::kDouble), torch::ones({2}, torch::kDouble));
  adamw->step();
  CHECK(p.vector[0].item<double>() == doctest::Approx(before - 0.25 * 1.0 / (1.0 + 1e-8)).epsilon(1e-12));
}

namespace {

// `steps` AdamW steps of lr 1e-4 on four weights starting at 1 with the constant gradient 0.5.
Tensor adamw_steps(PolicyOptimizer& optimizer, Tensor& weight, int steps) {
  for (int i = 0; i < steps; ++i) {
    optimizer.zero_grad();
    (weight.to(torch::kFloat) * 0.5).sum().backward();
    optimizer.clip_and_step(/*max_grad_norm=*/0.0, 1e-4);  // copies a bf16 model's gradients to the masters itself
  }
  return weight.detach().to(torch::kFloat);
}

AdamWSettings no_decay() {
  AdamWSettings s;
  s.weight_decay = 0.0;
  return s;
}

}  // namespace

TEST_CASE("PolicyOptimizer: a bf16 model's updates accumulate in float32 master weights") {
  // Each step moves a weight by about lr = 1e-4, far below half a bf16 ulp at 1 (2^-9 below 1): stepped
  // directly, bf16 weights would never move. 100 steps move the master by 1e-2, which bf16 shows.
  Tensor reference = torch::ones({4}, torch::kFloat).requires_grad_(true);
  PolicyOptimizer float32({reference}, no_decay());
  CHECK_FALSE(float32.has_master_weights());
  const Tensor expected = adamw_steps(float32, reference, 100);
  CHECK(expected[0].item<double>() == doctest::Approx(1.0 - 100 * 1e-4).epsilon(1e-3));

  Tensor weight = torch::ones({4}, torch::kBFloat16).requires_grad_(true);
  PolicyOptimizer mixed({weight}, no_decay());
  REQUIRE(mixed.has_master_weights());
  const Tensor got = adamw_steps(mixed, weight, 100);
  CHECK((weight.scalar_type() == torch::kBFloat16));
  CHECK((mixed.master_weights()[0].scalar_type() == torch::kFloat));
  // The masters ran exactly the float32 run (same gradients, same arithmetic); the model holds them rounded.
  CHECK(torch::equal(mixed.master_weights()[0].detach(), expected));
  CHECK(torch::equal(got, expected.to(torch::kBFloat16).to(torch::kFloat)));
  CHECK(got[0].item<double>() < 0.995);

  Tensor plain = torch::ones({4}, torch::kBFloat16).requires_grad_(true);
  auto direct = make_adamw({plain}, no_decay());
  for (int i = 0; i < 100; ++i) {
    direct->zero_grad();
    (plain.to(torch::kFloat) * 0.5).sum().backward();
    set_learning_rate(*direct, 1e-4);
    direct->step();
  }
  CHECK(plain[0].item<double>() == 1.0);  // why the masters exist
}

TEST_CASE("PolicyOptimizer: save and load restore moments and master weights, so training continues bitwise") {
  const std::filesystem::path dir = std::filesystem::temp_directory_path() / "grpo_policy_optimizer_test";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  Tensor weight = torch::ones({4}, torch::kBFloat16).requires_grad_(true);
  PolicyOptimizer first({weight}, no_decay());
  adamw_steps(first, weight, 30);
  first.save(dir.string());
  CHECK(std::filesystem::exists(dir / "master_weights.pt"));
  Tensor resumed_weight = weight.detach().clone().requires_grad_(true);
  PolicyOptimizer resumed({resumed_weight}, no_decay());
  resumed.load(dir.string());
  // The masters differ from the bf16 weights they were rounded into: only the saved copy restores them.
  CHECK_FALSE(torch::equal(resumed.master_weights()[0].detach(), resumed_weight.detach().to(torch::kFloat)));
  const Tensor continued = adamw_steps(first, weight, 30);
  const Tensor after_resume = adamw_steps(resumed, resumed_weight, 30);
  CHECK(torch::equal(continued, after_resume));
  CHECK(torch::equal(first.master_weights()[0].detach(), resumed.master_weights()[0].detach()));
  std::filesystem::remove_all(dir);
}
