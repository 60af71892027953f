// Sampling filters on hand-built distributions, and empirical frequencies against the distribution.
#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "rollout/sampling.h"

using namespace grpo;
using torch::Tensor;

namespace {

// Logits whose softmax is exactly `probs`.
Tensor logits_of(const std::vector<double>& probs) {
  return torch::tensor(probs, torch::kDouble).log().to(torch::kFloat).unsqueeze(0);
}

std::vector<bool> kept(const Tensor& probs) {
  std::vector<bool> out;
  for (int64_t i = 0; i < probs.size(-1); ++i) out.push_back(probs[0][i].item<float>() > 0);
  return out;
}

}  // namespace

TEST_CASE("top-k, top-p and min-p keep exactly the right tokens") {
  // p = {0.05, 0.40, 0.10, 0.25, 0.20}; sorted: 1 (.40), 3 (.25), 4 (.20), 2 (.10), 0 (.05)
  Tensor logits = logits_of({0.05, 0.40, 0.10, 0.25, 0.20});
  SamplingParams p;
  SUBCASE("top-k 2") {
    p.top_k = 2;
    CHECK(kept(filtered_probabilities(logits, p)) == std::vector<bool>{false, true, false, true, false});
    Tensor q = filtered_probabilities(logits, p);
    CHECK(q[0][1].item<float>() == doctest::Approx(0.40 / 0.65));
  }
  SUBCASE("top-p 0.6: .40 alone is < .6, .40 + .25 reaches it") {
    p.top_p = 0.6;
    CHECK(kept(filtered_probabilities(logits, p)) == std::vector<bool>{false, true, false, true, false});
  }
  SUBCASE("top-p 0.66: needs the third token") {
    p.top_p = 0.66;
    CHECK(kept(filtered_probabilities(logits, p)) == std::vector<bool>{false, true, false, true, true});
  }
  SUBCASE("top-p smaller than the top token keeps only it") {
    p.top_p = 0.1;
    CHECK(kept(filtered_probabilities(logits, p)) == std::vector<bool>{false, true, false, false, false});
  }
  SUBCASE("min-p 0.5: keep p >= 0.20") {
    p.min_p = 0.5;
    CHECK(kept(filtered_probabilities(logits, p)) == std::vector<bool>{false, true, false, true, true});
  }
  SUBCASE("top-k then top-p on the renormalised top-k distribution") {
    p.top_k = 3;      // {.40, .25, .20} -> {.4706, .2941, .2353}
    p.top_p = 0.75;   // .4706 + .2941 = .7647 >= .75: two tokens
    CHECK(kept(filtered_probabilities(logits, p)) == std::vector<bool>{false, true, false, true, false});
  }
  SUBCASE("temperature sharpens before filtering") {
    p.temperature = 0.5;  // p^2 normalised: .16/.2750 = .5818 for token 1
    Tensor q = filtered_probabilities(logits, p);
    CHECK(q[0][1].item<float>() == doctest::Approx(0.16 / 0.275).epsilon(1e-5));
  }
}

TEST_CASE("empirical frequencies match the filtered distribution (chi-square)") {
  Tensor logits = logits_of({0.05, 0.40, 0.10, 0.25, 0.20});
  SamplingParams p;
  p.temperature = 1.3;
  p.top_k = 4;
  Tensor expected = filtered_probabilities(logits, p)[0];
  const int n = 20000;
  std::vector<double> counts(5, 0);
  Tensor batch = logits.expand({n, 5}).contiguous();
  std::vector<double> u;
  for (int i = 0; i < n; ++i) u.push_back(sampling_uniform(sample_seed(123, i), 0));
  Tensor tokens = sample_tokens(batch, u, p);
  for (int i = 0; i < n; ++i) counts[tokens[i].item<int64_t>()] += 1;
  CHECK(counts[0] == 0);  // removed by top-k
  double chi2 = 0;
  for (int v = 1; v < 5; ++v) {
    double e = expected[v].item<double>() * n;
    chi2 += (counts[v] - e) * (counts[v] - e) / e;
  }
  // 3 degrees of freedom: P(chi2 > 16.27) = 0.001.
  CHECK(chi2 < 16.27);
}

TEST_CASE("uniform numbers are deterministic per (seed, index) and look uniform") {
  CHECK(sampling_uniform(5, 3) == sampling_uniform(5, 3));
  CHECK(sampling_uniform(5, 3) != sampling_uniform(5, 4));
  CHECK(sample_seed(1, 0) != sample_seed(1, 1));
  double sum = 0, sum_sq = 0;
  const int n = 100000;
  for (int i = 0; i < n; ++i) {
    double u = sampling_uniform(99, i);
    REQUIRE(u >= 0.0);
    REQUIRE(u < 1.0);
    sum += u;
    sum_sq += u * u;
  }
  CHECK(sum / n == doctest::Approx(0.5).epsilon(0.01));
  CHECK(sum_sq / n - (sum / n) * (sum / n) == doctest::Approx(1.0 / 12).epsilon(0.02));
}

TEST_CASE("greedy takes the arg-max; log-probs are tempered but not truncated") {
  Tensor logits = logits_of({0.05, 0.40, 0.10, 0.25, 0.20});
  SamplingParams greedy;
  greedy.temperature = 0;
  CHECK(sample_tokens(logits, {0.99}, greedy)[0].item<int64_t>() == 1);
  SamplingParams p;
  p.temperature = 0.5;
  p.top_k = 1;
  Tensor lp = sampled_token_logprobs(logits, torch::tensor({3}), p);
  CHECK(lp[0].item<float>() == doctest::Approx(std::log(0.0625 / 0.275)).epsilon(1e-5));
}
