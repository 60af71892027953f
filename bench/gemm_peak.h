#pragma once
// The matrix-multiplication rate a CPU run is measured against: FLOP/s of torch::mm in float32, best
// of several calls, for a square product and for the shapes a model actually multiplies. The GEMM
// peak of a run is the best of these, measured in the same process as what it bounds (the machine is
// shared: its rate moves between runs).
#include <fmt/core.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <string>
#include <vector>

namespace grpo::bench {

// FLOP/s of [m, k] x [k, n] -> [m, n]. `transposed_weight`: the right operand is stored [n, k] and
// read transposed, as linear's x · Wᵀ reads a weight.
inline double gemm_rate(int64_t m, int64_t k, int64_t n, bool transposed_weight = true, int repeats = 5) {
  torch::NoGradGuard no_grad;
  torch::Tensor a = torch::randn({m, k});
  torch::Tensor b = transposed_weight ? torch::randn({n, k}).t() : torch::randn({k, n});
  torch::Tensor out = torch::empty({m, n});
  torch::mm_out(out, a, b);  // warm-up: BLAS threads, buffers
  // Enough calls per timing that a small product is not measured against the clock's resolution.
  const int64_t flops = 2 * m * k * n;
  const int calls = static_cast<int>(std::clamp<int64_t>(int64_t{200'000'000} / flops, 1, 1000));
  double best = 1e30;
  for (int r = 0; r < repeats; ++r) {
    const auto start = std::chrono::steady_clock::now();
    for (int c = 0; c < calls; ++c) torch::mm_out(out, a, b);
    best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() / calls);
  }
  return static_cast<double>(flops) / best;
}

struct GemmShape {
  std::string what;
  int64_t m, k, n;
};

// Measures and prints each shape's rate and a square 1024 product; returns the best rate (the peak).
inline double measure_gemm_peak(const std::vector<GemmShape>& shapes) {
  std::vector<GemmShape> all = {{"square", 1024, 1024, 1024}};
  all.insert(all.end(), shapes.begin(), shapes.end());
  double peak = 0;
  fmt::print("GEMM rate (float32 torch::mm, best of 5):");
  for (const GemmShape& s : all) {
    const double rate = gemm_rate(s.m, s.k, s.n);
    peak = std::max(peak, rate);
    fmt::print(" {} [{}, {}]x[{}, {}] {:.1f};", s.what, s.m, s.k, s.k, s.n, rate / 1e9);
  }
  fmt::print(" GFLOP/s; peak {:.1f}\n", peak / 1e9);
  return peak;
}

}  // namespace grpo::bench
