// AdamW construction (weight-decay groups), one update against the AdamW formula worked by hand,
// gradient clipping returning the pre-clip norm, and learning-rate updates.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <stdexcept>

#include "rl/optimizer.h"

using namespace grpo;
using torch::Tensor;

static const double kNaN = std::numeric_limits<double>::quiet_NaN();

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
