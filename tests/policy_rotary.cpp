// RoPE applications against the textbook pair rotation (u, v) -> (u cos θ − v sin θ, u sin θ + v cos θ),
// computed here element by element from the inverse frequencies, for both pairings.
#include <doctest/doctest.h>

#include <cmath>

#include "policy/rotary_embedding.h"

using namespace grpo;
using torch::Tensor;

TEST_CASE("rotary embedding: each pair turns by position x frequency, exactly as the two-line formula computes it") {
  for (RopeLayout layout : {RopeLayout::Interleaved, RopeLayout::RotateHalf}) {
    CAPTURE(layout == RopeLayout::Interleaved ? "interleaved" : "rotate-half");
    RopeConfig rope;
    rope.layout = layout;
    rope.theta = 500.0;
    const int64_t dim = 8, half = dim / 2;
    RotaryEmbedding embedding(rope, dim);
    Tensor positions = torch::tensor({0, 3, 17}, torch::kLong).view({1, 3});
    Tensor x = torch::randn({1, 3, 2, dim}, torch::kFloat);  // [B, T, H, dim]
    const RopeAngles angles = embedding.angles(positions, torch::kFloat);
    Tensor got = embedding.apply(x, angles);

    Tensor inv_freq = rope_inverse_frequencies(rope, dim);
    auto x_at = x.accessor<float, 4>();
    auto got_at = got.accessor<float, 4>();
    auto cos_at = angles.cos.accessor<float, 4>();
    auto sin_at = angles.signed_sin.accessor<float, 4>();
    for (int64_t t = 0; t < 3; ++t)
      for (int64_t i = 0; i < half; ++i) {
        const int64_t a = layout == RopeLayout::Interleaved ? 2 * i : i;  // the pair's two members
        const int64_t b = layout == RopeLayout::Interleaved ? 2 * i + 1 : i + half;
        // The angle of pair i at position p is p · inv_freq[i].
        const double angle = static_cast<double>(positions[0][t].item<int64_t>()) * inv_freq[i].item<double>();
        const float c = cos_at[0][t][0][a], s = sin_at[0][t][0][b];
        CHECK(c == doctest::Approx(std::cos(angle)).epsilon(1e-6));
        CHECK(s == doctest::Approx(std::sin(angle)).epsilon(1e-6));
        CHECK(cos_at[0][t][0][b] == c);
        CHECK(sin_at[0][t][0][a] == -s);
        for (int64_t h = 0; h < 2; ++h) {
          const float u = x_at[0][t][h][a], v = x_at[0][t][h][b];
          CHECK(got_at[0][t][h][a] == u * c - v * s);  // exactly: no other rounding than the formula's
          CHECK(got_at[0][t][h][b] == u * s + v * c);
        }
      }
  }
}
