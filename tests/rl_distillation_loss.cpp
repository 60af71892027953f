// Distillation losses (rl/distillation_loss.h): each value and gradient against a float64 computation
// written here with plain loops (softmax, sums, finite differences), never the code under test.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <numeric>
#include <stdexcept>
#include <vector>

#include "rl/distillation_loss.h"

using namespace grpo;
using torch::Tensor;

namespace {

using Row = std::vector<double>;

Row distill_row(const Tensor& t, int64_t i) {
  Tensor r = t[i].to(torch::kDouble).contiguous();
  return Row(r.data_ptr<double>(), r.data_ptr<double>() + r.numel());
}

// softmax(z / tau) with a plain max-shifted sum.
Row distill_softmax(const Row& z, double tau) {
  double m = -INFINITY;
  for (double v : z) m = std::max(m, v / tau);
  Row p(z.size());
  double s = 0;
  for (size_t i = 0; i < z.size(); ++i) s += (p[i] = std::exp(z[i] / tau - m));
  for (double& v : p) v /= s;
  return p;
}

double naive_forward_kl(const Row& zs, const Row& zt, double tau) {
  const Row q = distill_softmax(zs, tau), p = distill_softmax(zt, tau);
  double kl = 0;
  for (size_t v = 0; v < p.size(); ++v) kl += p[v] * std::log(p[v] / q[v]);
  return kl * tau * tau;
}

double naive_reverse_kl(const Row& zs, const Row& zt, double tau) {
  const Row q = distill_softmax(zs, tau), p = distill_softmax(zt, tau);
  double kl = 0;
  for (size_t v = 0; v < p.size(); ++v) kl += q[v] * std::log(q[v] / p[v]);
  return kl;
}

// The teacher's k largest probabilities as k buckets plus one bucket for the rest, student likewise.
double naive_top_k_kl(const Row& zs, const Row& zt, int64_t k, double tau) {
  const Row q = distill_softmax(zs, tau), p = distill_softmax(zt, tau);
  std::vector<size_t> order(p.size());
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return p[a] > p[b]; });
  double kl = 0, p_rest = 1, q_rest = 1;
  for (int64_t i = 0; i < k; ++i) {
    const size_t v = order[static_cast<size_t>(i)];
    kl += p[v] * std::log(p[v] / q[v]);
    p_rest -= p[v];
    q_rest -= q[v];
  }
  if (k < static_cast<int64_t>(p.size())) kl += p_rest * std::log(p_rest / q_rest);
  return kl * tau * tau;
}

// Central finite differences of f at every entry of row i of z (float64).
template <typename F>
Row distill_finite_differences(const Row& z, F f, double h = 1e-6) {
  Row g(z.size());
  for (size_t v = 0; v < z.size(); ++v) {
    Row up = z, down = z;
    up[v] += h;
    down[v] -= h;
    g[v] = (f(up) - f(down)) / (2 * h);
  }
  return g;
}

struct LogitPair {
  Tensor student, teacher;  // [N, V] float64
};

LogitPair distill_logits(int64_t n, int64_t v, uint64_t seed) {
  torch::manual_seed(seed);
  return {torch::randn({n, v}, torch::kDouble) * 2.0, torch::randn({n, v}, torch::kDouble) * 2.0};
}

// d(Σ_i loss_i)/d student logits, by autograd on the code under test.
Tensor distill_autograd(const Tensor& student, const std::function<Tensor(const Tensor&)>& loss) {
  Tensor s = student.clone().set_requires_grad(true);
  loss(s).sum().backward();
  return s.grad();
}

}  // namespace

TEST_CASE("forward KL with temperature: values and gradient match a float64 computation") {
  const LogitPair l = distill_logits(5, 11, 1);
  for (double tau : {1.0, 2.0, 0.5}) {
    const Tensor kl = forward_kl(l.student, l.teacher, tau);
    REQUIRE(kl.sizes() == torch::IntArrayRef({5}));
    const Tensor grad = distill_autograd(l.student, [&](const Tensor& s) { return forward_kl(s, l.teacher, tau); });
    for (int64_t i = 0; i < 5; ++i) {
      const Row zs = distill_row(l.student, i), zt = distill_row(l.teacher, i);
      CHECK(kl[i].item<double>() == doctest::Approx(naive_forward_kl(zs, zt, tau)).epsilon(1e-10));
      // Hinton et al.: d(τ² KL)/dz_S = τ (q − p), and the finite differences of the float64 loss agree.
      const Row q = distill_softmax(zs, tau), p = distill_softmax(zt, tau);
      const Row fd = distill_finite_differences(zs, [&](const Row& z) { return naive_forward_kl(z, zt, tau); });
      for (size_t v = 0; v < zs.size(); ++v) {
        const double g = grad[i][static_cast<int64_t>(v)].item<double>();
        CHECK(g == doctest::Approx(tau * (q[v] - p[v])).epsilon(1e-9));
        CHECK(g == doctest::Approx(fd[v]).epsilon(1e-5));
      }
    }
  }
  CHECK(forward_kl(l.teacher, l.teacher).abs().max().item<double>() < 1e-12);  // 0 at the teacher
}

TEST_CASE("top-k forward KL with the rest's mass: values and gradient match a float64 computation") {
  const LogitPair l = distill_logits(4, 9, 2);
  for (int64_t k : {1, 3, 8}) {
    for (double tau : {1.0, 1.5}) {
      const TeacherTopK top = teacher_top_k(l.teacher, k, tau);
      REQUIRE(top.ids.sizes() == torch::IntArrayRef({4, k}));
      const Tensor kl = forward_kl_top_k(l.student, top, tau);
      const Tensor grad = distill_autograd(l.student, [&](const Tensor& s) { return forward_kl_top_k(s, top, tau); });
      for (int64_t i = 0; i < 4; ++i) {
        const Row zs = distill_row(l.student, i), zt = distill_row(l.teacher, i);
        CHECK(kl[i].item<double>() == doctest::Approx(naive_top_k_kl(zs, zt, k, tau)).epsilon(1e-9));
        const Row fd = distill_finite_differences(zs, [&](const Row& z) { return naive_top_k_kl(z, zt, k, tau); });
        for (size_t v = 0; v < zs.size(); ++v)
          CHECK(grad[i][static_cast<int64_t>(v)].item<double>() == doctest::Approx(fd[v]).epsilon(1e-5));
      }
    }
  }
  // k = V keeps every token: the full forward KL exactly (no rest bucket).
  const Tensor all = forward_kl_top_k(l.student, teacher_top_k(l.teacher, 9, 1.3), 1.3);
  CHECK(torch::allclose(all, forward_kl(l.student, l.teacher, 1.3), 1e-10, 1e-12));
  // The top-k KL is a KL of coarser distributions: never above the full one (data processing inequality).
  CHECK((forward_kl_top_k(l.student, teacher_top_k(l.teacher, 3), 1.0) <= forward_kl(l.student, l.teacher) + 1e-12).all().item<bool>());
}

TEST_CASE("reverse KL: values and gradient match a float64 computation; the sampled estimate is the log-prob gap") {
  const LogitPair l = distill_logits(3, 7, 3);
  const Tensor kl = reverse_kl(l.student, l.teacher, 1.2);
  const Tensor grad = distill_autograd(l.student, [&](const Tensor& s) { return reverse_kl(s, l.teacher, 1.2); });
  for (int64_t i = 0; i < 3; ++i) {
    const Row zs = distill_row(l.student, i), zt = distill_row(l.teacher, i);
    CHECK(kl[i].item<double>() == doctest::Approx(naive_reverse_kl(zs, zt, 1.2)).epsilon(1e-10));
    const Row fd = distill_finite_differences(zs, [&](const Row& z) { return naive_reverse_kl(z, zt, 1.2); });
    for (size_t v = 0; v < zs.size(); ++v)
      CHECK(grad[i][static_cast<int64_t>(v)].item<double>() == doctest::Approx(fd[v]).epsilon(1e-5));
  }
  // Hand-worked: log π_S = −0.5, log π_T = −2.0 -> 1.5; the teacher's side carries no gradient.
  const Tensor s = torch::tensor({{-0.5, -1.0}}, torch::kDouble).set_requires_grad(true);
  const Tensor t = torch::tensor({{-2.0, -1.0}}, torch::kDouble).set_requires_grad(true);
  const Tensor gap = sampled_reverse_kl(s, t);
  CHECK(gap[0][0].item<double>() == doctest::Approx(1.5));
  CHECK(gap[0][1].item<double>() == doctest::Approx(0.0));
  gap.sum().backward();
  CHECK(s.grad().sum().item<double>() == doctest::Approx(2.0));
  CHECK_FALSE(t.grad().defined());
  // Its expectation under the student is the reverse KL: Σ_v q(v) (log q(v) − log p(v)).
  const Tensor log_q = torch::log_softmax(l.student, -1), log_p = torch::log_softmax(l.teacher, -1);
  CHECK(torch::allclose((log_q.exp() * sampled_reverse_kl(log_q, log_p)).sum(-1), reverse_kl(l.student, l.teacher), 1e-10, 1e-12));
}

TEST_CASE("agreement diagnostics: hand-worked log-prob gap and argmax agreement") {
  // Row 0: both put their maximum on token 0; row 1: the student on 2, the teacher on 1.
  const Tensor s = torch::log(torch::tensor({{0.5, 0.25, 0.25}, {0.2, 0.3, 0.5}}, torch::kDouble));
  const Tensor t = torch::log(torch::tensor({{0.8, 0.1, 0.1}, {0.1, 0.6, 0.3}}, torch::kDouble));
  const DistillationAgreement a = distillation_agreement(s, t, torch::tensor({0, 2}, torch::kLong));
  CHECK(a.positions == 2);
  CHECK(a.argmax_agree == 1);
  CHECK(a.logprob_gap_sum == doctest::Approx(std::log(0.5 / 0.8) + std::log(0.5 / 0.3)));
}

TEST_CASE("distillation losses reject different vocabularies, bad shapes, k and temperature, naming them") {
  const Tensor s = torch::zeros({2, 5}), t = torch::zeros({2, 6});
  CHECK_THROWS_WITH_AS(forward_kl(s, t), doctest::Contains("student's vocabulary has 5 entries, the teacher's 6"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(reverse_kl(s, t), doctest::Contains("vocabulary"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(forward_kl(s, torch::zeros({3, 5})), doctest::Contains("different positions"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(forward_kl(s, s, 0.0), doctest::Contains("temperature must be > 0"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(teacher_top_k(t, 7), doctest::Contains("top_k must be in 1..6"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(forward_kl_top_k(s, teacher_top_k(t, 6)), doctest::Contains("student's vocabulary has 5"),
                       std::invalid_argument);
}
