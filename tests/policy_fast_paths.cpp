// Each decode fast path against the general path it shortcuts (docs/policy.md, "Decode fast paths"):
// the same inputs through both, in float64 where the arithmetic allows, and where a fast path only
// skips work (the attention mask) against an independent loop too. A last case runs whole models one
// row at a time, where every fast path applies, against the full forward, where none does.
#include <doctest/doctest.h>

#include <cmath>
#include <string>
#include <utility>
#include <vector>

#include "policy/forward_context.h"
#include "policy/fused_linears.h"
#include "policy/mla_attention.h"
#include "policy/moe_router.h"
#include "policy/projection.h"
#include "policy_test_models.h"

using namespace grpo;
using torch::Tensor;

namespace {

// [B, S] bool mask of real tokens, row b left-padded by padding[b] positions.
Tensor left_padded_mask(const std::vector<int64_t>& padding, int64_t s) {
  Tensor mask = torch::ones({static_cast<int64_t>(padding.size()), s}, torch::kBool);
  for (size_t b = 0; b < padding.size(); ++b) mask[static_cast<int64_t>(b)].narrow(0, 0, padding[b]).fill_(false);
  return mask;
}

// What a query may not see, written out: key j is hidden from query i (absolute position past + i)
// when it lies after it or is padding. [B, 1, T, S] bool.
Tensor hidden_keys_by_loop(const Tensor& mask, int64_t past, int64_t t) {
  const int64_t b = mask.size(0), s = mask.size(1);
  Tensor out = torch::zeros({b, 1, t, s}, torch::kBool);
  auto m = mask.accessor<bool, 2>();
  auto o = out.accessor<bool, 4>();
  for (int64_t r = 0; r < b; ++r)
    for (int64_t i = 0; i < t; ++i)
      for (int64_t j = 0; j < s; ++j) o[r][0][i][j] = j > past + i || !m[r][j];
  return out;
}

using test::router_config;

using test::full_logits;

}  // namespace

TEST_CASE("fast path: single-token attention mask hides what the causal and padding mask hides") {
  // Exact comparisons: masks are booleans, and attention without a mask must equal attention under an
  // all-visible mask bit for bit (masked_fill with no true entry changes nothing).
  for (int64_t past : {0, 1, 6}) {
    CAPTURE(past);
    const int64_t s = past + 1;
    // The general path itself, for a decode step and for a prefill of three tokens, against the loop.
    Tensor padded = left_padded_mask({0, std::min<int64_t>(past, 1), past}, s);
    CHECK(torch::equal(causal_padding_mask(padded, past, 1), hidden_keys_by_loop(padded, past, 1)));
    Tensor prefill_mask = left_padded_mask({0, std::min<int64_t>(past, 2), past}, past + 3);
    CHECK(torch::equal(causal_padding_mask(prefill_mask, past, 3), hidden_keys_by_loop(prefill_mask, past, 3)));

    // With padding: the fast path's padding-only mask is the general mask.
    if (past > 0) {
      Tensor fast = blocked_keys(padded, past, 1);
      REQUIRE(fast.defined());
      CHECK(torch::equal(fast, causal_padding_mask(padded, past, 1)));
    }
    // Without padding: no mask at all, where the general mask hides nothing ...
    Tensor all_real = torch::ones({3, s}, torch::kBool);
    CHECK_FALSE(blocked_keys(all_real, past, 1).defined());
    Tensor general = causal_padding_mask(all_real, past, 1);
    CHECK_FALSE(general.any().item<bool>());
    // ... and attention without a mask equals attention under the general one, GQA-shaped (2 groups of
    // 2 query heads) in float64.
    torch::manual_seed(past);
    Tensor q = torch::randn({3, 2, 2, 1, 5}, torch::kDouble);
    Tensor k = torch::randn({3, 2, 1, s, 5}, torch::kDouble);
    Tensor v = torch::randn({3, 2, 1, s, 4}, torch::kDouble);
    ScalarConstant scale(0.37);
    CHECK(torch::equal(masked_attention(q, k, v, {}, scale), masked_attention(q, k, v, general.unsqueeze(1), scale)));
  }
  // A prefill (t > 1) always gets the general mask.
  Tensor prefill_mask = left_padded_mask({0, 2}, 5);
  CHECK(torch::equal(blocked_keys(prefill_mask, 0, 5), hidden_keys_by_loop(prefill_mask, 0, 5)));
}

TEST_CASE("fast path: per_head_matmul of one row equals bmm and the products written out") {
  // Each output is a dot product over d = 12: both paths round 12 products and 11 sums, in different
  // orders, so they may differ by a few ulps of the operands' magnitude (float64: ~1e-15 relative;
  // float32: ~1e-6). A wrong head, slice or transpose is off by O(1).
  for (auto [dtype, tolerance] : {std::pair{torch::kDouble, 1e-13}, std::pair{torch::kFloat, 1e-5}}) {
    CAPTURE(dtype);
    torch::manual_seed(3);
    // As the absorbed MLA path lays them out: heads first, the one row strided ([1, n_h, d] transposed).
    Tensor x = torch::randn({1, 4, 12}, dtype).transpose(0, 1);  // [n_h, 1, d]
    Tensor w = torch::randn({4, 12, 6}, dtype);                  // [n_h, d, e]
    Tensor fast = per_head_matmul(x, w);
    REQUIRE(fast.sizes() == torch::IntArrayRef({4, 1, 6}));
    CHECK(test::max_relative_error(fast, torch::bmm(x, w)) < tolerance);

    Tensor x64 = x.to(torch::kDouble), w64 = w.to(torch::kDouble);
    Tensor by_loop = torch::zeros({4, 1, 6}, torch::kDouble);
    for (int64_t h = 0; h < 4; ++h)
      for (int64_t e = 0; e < 6; ++e) {
        double sum = 0;
        for (int64_t d = 0; d < 12; ++d) sum += x64[h][0][d].item<double>() * w64[h][d][e].item<double>();
        by_loop[h][0][e] = sum;
      }
    CHECK(test::max_relative_error(fast, by_loop) < tolerance);
    // Several rows take bmm; the first row's products are the fast path's.
    Tensor rows = torch::cat({x, torch::randn({4, 2, 12}, dtype)}, 1);  // [n_h, 3, d]
    CHECK(test::max_relative_error(per_head_matmul(rows, w).narrow(1, 0, 1), fast) < tolerance);
  }
}

TEST_CASE("fast path: one-row projection (mv) equals linear (gemm)") {
  // Dot products over in = 32, rounded in different orders: float64 agrees to ~1e-15 relative.
  torch::manual_seed(4);
  Tensor weight = torch::randn({20, 32}, torch::kDouble), bias = torch::randn({20}, torch::kDouble);
  for (Tensor x : {torch::randn({1, 1, 32}, torch::kDouble), torch::randn({32}, torch::kDouble)})
    for (bool with_bias : {false, true}) {
      CAPTURE(with_bias);
      Tensor b = with_bias ? bias : Tensor();
      Tensor fast = project(x, weight, b);
      Tensor general = torch::nn::functional::linear(x, weight, b);
      REQUIRE(fast.sizes() == general.sizes());
      CHECK(test::max_relative_error(fast, general) < 1e-13);
    }
}

TEST_CASE("fast path: route_token picks the batched router's experts, weights and load") {
  // float64 pins the arithmetic; float32 allows a few ulps (softmax and normalisation over a row of 8
  // rather than a batch of rows round differently). Experts and loads are integers: equal.
  for (auto [dtype, tolerance] : {std::pair{torch::kDouble, 1e-12}, std::pair{torch::kFloat, 5e-6}})
    for (std::string method : {"noaux_tc", "group_limited_greedy", "greedy"}) {
      CAPTURE(method);
      CAPTURE(dtype);
      ModelConfig c = router_config(method, 4, 2, 3);
      c.moe.scoring = method == "group_limited_greedy" ? MoeScoring::Softmax : MoeScoring::Sigmoid;
      c.moe.norm_topk_prob = method != "greedy";
      c.moe.routed_scaling_factor = 2.5;
      torch::manual_seed(11);
      MoeRouter batched(c), lone(c);
      torch::NoGradGuard no_grad;
      batched->weight.normal_(0.0, 1.0);
      if (batched->has_correction_bias()) batched->e_score_correction_bias.uniform_(-0.5, 0.5);
      batched->to(dtype);
      lone->to(dtype);
      lone->weight.copy_(batched->weight);
      if (lone->has_correction_bias()) lone->e_score_correction_bias.copy_(batched->e_score_correction_bias);

      Tensor x = torch::randn({200, c.hidden_size}, dtype);
      Tensor valid = torch::rand({200}) < 0.8;
      Routing expected = batched->forward(x, {}, valid);
      for (int64_t i = 0; i < x.size(0); ++i) {
        TokenRoute route = lone->route_token(x[i], valid[i].item<bool>());
        REQUIRE(torch::equal(torch::tensor(route.experts, torch::kLong), expected.experts[i]));
        Tensor weights = torch::tensor(route.weights, torch::kDouble);
        const double difference = (weights - expected.weights[i].to(torch::kDouble)).abs().max().item<double>();
        CAPTURE(difference);
        CHECK(difference < tolerance);
      }
      CHECK(torch::equal(lone->load(), batched->load()));
    }
}

TEST_CASE("fast path: forward_token equals the grouped MoE path, padding included") {
  // The grouped path runs each expert on a matrix of rows (gemm), the fast path on one vector (mv),
  // and sums weighted outputs with add_(y, w) rather than index_add of y·w: float64 agrees to ~1e-15
  // relative, float32 to ~1e-6. A wrong expert or weight changes outputs by O(0.1).
  for (const char* json : {test::kTinyDeepSeekV3, test::kTinyDeepSeekV2})
    for (auto [dtype, tolerance] : {std::pair{torch::kDouble, 1e-12}, std::pair{torch::kFloat, 1e-5}}) {
      CausalLM model = test::tiny_model(json, 21, dtype);
      CAPTURE(model->config().model_type);
      CAPTURE(dtype);
      DeepSeekMoe moe = model->model->decoder_layers[1]->moe;  // layer 0 is dense (first_k_dense_replace)
      REQUIRE(moe);
      torch::NoGradGuard no_grad;  // the fast path needs no autograd
      const int64_t h = model->config().hidden_size, n = 7;
      Tensor x = torch::randn({n, 1, h}, dtype);
      Tensor valid = torch::tensor({true, true, false, true, true, true, true}).view({n, 1});  // token 2: padding

      // General path: the n tokens as one batch of n rows.
      RoutingTrace grouped_trace;
      ForwardContext grouped;
      grouped.token_mask = valid;
      grouped.routing = &grouped_trace;
      REQUIRE_FALSE(moe->takes_token_path(x, grouped));
      moe->gate->reset_load();
      Tensor expected = moe(x, grouped);  // [n, 1, H]
      Tensor expected_load = moe->gate->load().clone();

      // Fast path: each token alone.
      moe->gate->reset_load();
      for (int64_t i = 0; i < n; ++i) {
        CAPTURE(i);
        RoutingTrace trace;
        ForwardContext lone;
        lone.token_mask = valid.narrow(0, i, 1);
        lone.routing = &trace;
        Tensor token = x.narrow(0, i, 1);  // [1, 1, H]
        REQUIRE(moe->takes_token_path(token, lone));
        Tensor got = moe(token, lone);
        CHECK(test::max_relative_error(got, expected.narrow(0, i, 1)) < tolerance);
        REQUIRE(trace.experts.size() == 1);
        CHECK(torch::equal(trace.experts[0], grouped_trace.experts[0].narrow(0, i, 1)));
      }
      CHECK(torch::equal(moe->gate->load(), expected_load));  // padding not counted, by either path
    }
}

TEST_CASE("fast paths together: one row decoded token by token equals the full forward") {
  // One row through the KV cache takes every fast path (single-token mask skip, one-row projections,
  // per_head_matmul and host routing with the lone-token MoE for DeepSeek); the full forward of the
  // same tokens takes none. float64 with 1e-10: the paths differ in summation order only.
  for (const char* json : test::kAllTinyConfigs) {
    CausalLM model = test::tiny_model(json, 4, torch::kDouble);
    CAPTURE(model->config().model_type);
    torch::NoGradGuard no_grad;  // the MoE fast path is taken without autograd only
    Tensor ids = torch::randint(0, 61, {1, 9}, torch::kLong);
    Tensor expected = full_logits(model, ids);
    KVCache cache = model->new_cache(1, 9);
    ModelInputs prefill;
    prefill.input_ids = ids.narrow(1, 0, 3);
    prefill.cache = &cache;
    std::vector<Tensor> steps = {model->forward(prefill)};
    for (int64_t t = 3; t < 9; ++t) {
      ModelInputs step;
      step.input_ids = ids.narrow(1, t, 1);
      step.cache = &cache;
      steps.push_back(model->forward(step));
    }
    CHECK(test::max_relative_error(torch::cat(steps, 1), expected) < 1e-10);
  }
}

TEST_CASE("fast path: fused linear layers equal each layer's product, values and gradients") {
  // Three layers of one input width (q/k/v-shaped: 5, 3 and 3 outputs, with biases) as one product
  // over stacked weights, against each layer alone and against sums written out, in float64. The
  // fused and separate products sum the same 7 terms per output (1e-13 relative); a wrong block,
  // bias or gradient routing is off by O(1).
  torch::manual_seed(12);
  auto layer = [](int64_t out) { return torch::nn::Linear(torch::nn::LinearOptions(7, out).bias(true)); };
  std::vector<torch::nn::Linear> layers = {layer(5), layer(3), layer(3)};
  for (torch::nn::Linear& l : layers) {
    l->to(torch::kDouble);
    torch::NoGradGuard no_grad;
    l->bias.normal_(0.0, 1.0);
  }
  FusedLinears fused(layers);
  CHECK((fused.widths() == std::vector<int64_t>{5, 3, 3}));
  Tensor x = torch::randn({2, 4, 7}, torch::kDouble);

  // Σ_i x[n, i] · W[o, i] + b[o] for every row n and output o, layer by layer.
  auto by_loop = [&](const Tensor& input) {
    Tensor rows = input.reshape({-1, 7});
    std::vector<Tensor> blocks;
    for (const torch::nn::Linear& l : layers) {
      Tensor out = torch::zeros({rows.size(0), l->weight.size(0)}, torch::kDouble);
      for (int64_t n = 0; n < rows.size(0); ++n)
        for (int64_t o = 0; o < l->weight.size(0); ++o) {
          double sum = l->bias[o].item<double>();
          for (int64_t i = 0; i < 7; ++i) sum += rows[n][i].item<double>() * l->weight[o][i].item<double>();
          out[n][o] = sum;
        }
      blocks.push_back(out);
    }
    return torch::cat(blocks, 1).view({input.size(0), input.size(1), 11});
  };

  SUBCASE("values without autograd, after in-place updates and after a dtype change") {
    torch::NoGradGuard no_grad;
    CHECK(test::max_relative_error(fused.forward(x), by_loop(x)) < 1e-13);
    CHECK(test::max_relative_error(fused.forward(x), fused.forward_separately(x)) < 1e-13);
    std::vector<Tensor> split = fused.forward_split(x);
    REQUIRE(split.size() == 3);
    CHECK(split[1].sizes() == torch::IntArrayRef({2, 4, 3}));
    CHECK(test::max_relative_error(split[2], layers[2](x)) < 1e-13);
    // An optimizer step or a checkpoint load writes the parameters in place: the next product sees it.
    layers[1]->weight.add_(0.5);
    layers[2]->bias.mul_(-2.0);
    CHECK(test::max_relative_error(fused.forward(x), by_loop(x)) < 1e-13);
    // Module::to gives the parameters new storage: the stacked weight is made again from them.
    for (torch::nn::Linear& l : layers) l->to(torch::kFloat);
    for (torch::nn::Linear& l : layers) l->to(torch::kDouble);
    layers[0]->weight.sub_(0.25);
    CHECK(test::max_relative_error(fused.forward(x), by_loop(x)) < 1e-13);
    CHECK((fused.forward(x).scalar_type() == torch::kDouble));
  }

  SUBCASE("gradients reach each layer's own parameters") {
    Tensor input = x.clone().requires_grad_(true);
    Tensor upstream = torch::randn({2, 4, 11}, torch::kDouble);
    (fused.forward(input) * upstream).sum().backward();
    // dL/dW_l[o, i] = Σ_n upstream[n, o_l] · x[n, i]; dL/db_l[o] = Σ_n upstream[n, o_l];
    // dL/dx[n, i] = Σ_o upstream[n, o] · W[o, i] over all layers' outputs.
    Tensor g = upstream.reshape({8, 11}), rows = x.reshape({8, 7});
    Tensor expected_x = torch::zeros({8, 7}, torch::kDouble);
    int64_t column = 0;
    for (torch::nn::Linear& l : layers) {
      const int64_t out = l->weight.size(0);
      REQUIRE(l->weight.grad().defined());
      Tensor dw = torch::zeros({out, 7}, torch::kDouble), db = torch::zeros({out}, torch::kDouble);
      for (int64_t o = 0; o < out; ++o)
        for (int64_t n = 0; n < 8; ++n) {
          const double up = g[n][column + o].item<double>();
          db[o] += up;
          for (int64_t i = 0; i < 7; ++i) {
            dw[o][i] += up * rows[n][i].item<double>();
            expected_x[n][i] += up * l->weight[o][i].item<double>();
          }
        }
      CHECK(test::max_relative_error(l->weight.grad(), dw) < 1e-13);
      CHECK(test::max_relative_error(l->bias.grad(), db) < 1e-13);
      column += out;
    }
    CHECK(test::max_relative_error(input.grad().reshape({8, 7}), expected_x) < 1e-13);
  }
}

TEST_CASE("fast path: decode-step attention kernel equals the bmm path and a loop") {
  // One query position without autograd takes the kernel; the same call with a query that wants a
  // gradient takes the bmm path. Keys and values are read in place from a wider cache-shaped tensor
  // (positions narrowed out of a larger capacity), as a decode step reads them. Sums of 6 products
  // in different orders: float64 agrees to ~1e-15, float32 to ~1e-6; a wrong row, stride or mask is
  // off by O(0.1).
  for (auto [dtype, tolerance] : {std::pair{torch::kDouble, 1e-12}, std::pair{torch::kFloat, 1e-5}}) {
    CAPTURE(dtype);
    torch::manual_seed(5);
    const int64_t b = 3, g = 2, r = 3, d = 6, dv = 5, s = 7;
    Tensor q = torch::randn({b, g, r, 1, d}, dtype);
    Tensor k_store = torch::randn({b, g, 10, d}, dtype), v_store = torch::randn({b, g, 10, dv}, dtype);
    Tensor k = k_store.narrow(2, 0, s).unsqueeze(2), v = v_store.narrow(2, 0, s).unsqueeze(2);  // [B, G, 1, S, D]
    // Row 0 sees everything, row 1 has two padding keys in front, row 2 sees nothing (a padding row).
    Tensor blocked = torch::zeros({b, 1, 1, 1, s}, torch::kBool);
    blocked[1].narrow(-1, 0, 2).fill_(true);
    blocked[2].fill_(true);
    ScalarConstant scale(0.41);
    for (bool masked : {false, true}) {
      CAPTURE(masked);
      Tensor mask = masked ? blocked : Tensor();
      Tensor fast;
      {
        torch::NoGradGuard no_grad;
        fast = masked_attention(q, k, v, mask, scale);
      }
      Tensor general = masked_attention(q.clone().requires_grad_(true), k, v, mask, scale).detach();
      REQUIRE(fast.sizes() == general.sizes());
      CHECK(test::max_relative_error(fast, general) < tolerance);

      // Written out: softmax over the visible keys (uniform over all when none is), then the weighted sum.
      Tensor by_loop = torch::zeros({b, g, r, 1, dv}, torch::kDouble);
      for (int64_t i = 0; i < b; ++i)
        for (int64_t h = 0; h < g; ++h)
          for (int64_t row = 0; row < r; ++row) {
            std::vector<double> w(s, 0.0);
            bool any = false;
            for (int64_t j = 0; j < s; ++j) any = any || !(masked && blocked[i][0][0][0][j].item<bool>());
            double top = -1e300, total = 0;
            for (int64_t j = 0; j < s; ++j) {
              if (masked && any && blocked[i][0][0][0][j].item<bool>()) continue;
              if (masked && !any) {  // every key hidden: every score is the same lowest value
                w[j] = 0.0;
                top = 0.0;
                continue;
              }
              double dot = 0;
              for (int64_t e = 0; e < d; ++e) dot += q[i][h][row][0][e].item<double>() * k[i][h][0][j][e].item<double>();
              w[j] = 0.41 * dot;
              top = std::max(top, w[j]);
            }
            for (int64_t j = 0; j < s; ++j) {
              const bool hidden = masked && any && blocked[i][0][0][0][j].item<bool>();
              w[j] = hidden ? 0.0 : std::exp(w[j] - top);
              total += w[j];
            }
            for (int64_t j = 0; j < s; ++j)
              for (int64_t e = 0; e < dv; ++e) by_loop[i][h][row][0][e] += w[j] / total * v[i][h][0][j][e].item<double>();
          }
      CHECK(test::max_relative_error(fast, by_loop) < tolerance);
    }
  }
}
