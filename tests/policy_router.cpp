// The DeepSeekMoE router: biased selection with unbiased weights, group-limited selection, routing
// replay, load counts, the aux-loss-free bias update and the sequence-wise balance loss.
#include <doctest/doctest.h>

#include "policy/device.h"
#include "policy/moe_router.h"
#include "policy_test_models.h"

using namespace grpo;
using torch::Tensor;

namespace {

using test::router_config;

}  // namespace

TEST_CASE("selection uses biased scores, gate weights the unbiased ones") {
  ModelConfig c = router_config("noaux_tc", 1, 1, 2);
  c.moe.routed_scaling_factor = 1.0;
  MoeRouter router(c);
  torch::NoGradGuard no_grad;
  // One token; identity-like gate so that logits are known: logits = W x with x = e_0.
  router->weight.zero_();
  const double logits[8] = {2.0, 1.5, 1.0, 0.5, 0.0, -0.5, -1.0, -1.5};
  for (int e = 0; e < 8; ++e) router->weight[e][0] = logits[e];
  // Expert 6 and 7 get large biases: they must be selected despite low scores.
  router->e_score_correction_bias.zero_();
  router->e_score_correction_bias[6] = 5.0;
  router->e_score_correction_bias[7] = 4.0;
  Tensor x = torch::zeros({1, 32});
  x[0][0] = 1.0;
  Routing r = router->forward(x, {}, {});
  std::vector<int64_t> chosen = {r.experts[0][0].item<int64_t>(), r.experts[0][1].item<int64_t>()};
  std::sort(chosen.begin(), chosen.end());
  CHECK(chosen == std::vector<int64_t>{6, 7});
  // Weights: sigmoid of the raw logits, normalised over the two chosen (norm_topk_prob), no bias.
  double s6 = 1 / (1 + std::exp(1.0)), s7 = 1 / (1 + std::exp(1.5));
  double w6 = r.weights[0][r.experts[0][0].item<int64_t>() == 6 ? 0 : 1].item<double>();
  CHECK(w6 == doctest::Approx(s6 / (s6 + s7)).epsilon(1e-6));
}

TEST_CASE("group-limited selection never takes experts from excluded groups (hand-worked)") {
  // 8 experts in 4 groups of 2, keep 2 groups, pick 2 experts.
  // biased scores:  g0 = {0.90, 0.10}  g1 = {0.60, 0.55}  g2 = {0.80, 0.05}  g3 = {0.20, 0.70}
  // noaux_tc group score = sum of top-2: g0 1.00, g1 1.15, g2 0.85, g3 0.90 -> keep g1, g0 -> experts 0 and 2.
  // group_limited_greedy (max): g0 0.90, g1 0.60, g2 0.80, g3 0.70 -> keep g0, g2 -> experts 0 and 4.
  Tensor scores = torch::tensor({{0.90, 0.10, 0.60, 0.55, 0.80, 0.05, 0.20, 0.70}});
  {
    MoeRouter router(router_config("noaux_tc", 4, 2, 2));
    router->e_score_correction_bias.zero_();
    Tensor e = std::get<0>(router->select_experts(scores).sort(1));
    CHECK(e[0][0].item<int64_t>() == 0);
    CHECK(e[0][1].item<int64_t>() == 2);
  }
  {
    MoeRouter router(router_config("group_limited_greedy", 4, 2, 2));
    Tensor e = std::get<0>(router->select_experts(scores).sort(1));
    CHECK(e[0][0].item<int64_t>() == 0);
    CHECK(e[0][1].item<int64_t>() == 4);
  }
  {
    MoeRouter router(router_config("greedy", 4, 2, 2));  // greedy ignores groups: 0 (0.90) and 4 (0.80)
    Tensor e = std::get<0>(router->select_experts(scores).sort(1));
    CHECK(e[0][0].item<int64_t>() == 0);
    CHECK(e[0][1].item<int64_t>() == 4);
  }
  {
    // Randomised: whatever the scores, chosen experts lie in the topk_group best groups.
    MoeRouter router(router_config("noaux_tc", 4, 2, 3));
    router->e_score_correction_bias.zero_();
    Tensor s = torch::rand({200, 8});
    Tensor chosen = router->select_experts(s);
    Tensor group_scores = std::get<0>(s.view({200, 4, 2}).topk(2, -1)).sum(-1);
    Tensor kept = std::get<1>(group_scores.topk(2, -1));
    Tensor chosen_groups = chosen.div(2, "floor");
    Tensor in_kept = (chosen_groups.unsqueeze(-1) == kept.unsqueeze(1)).any(-1);
    CHECK(in_kept.all().item<bool>());
  }
}

TEST_CASE("repeated bias updates on a skewed input move loads toward balance") {
  ModelConfig c = router_config("noaux_tc", 1, 1, 2);
  MoeRouter router(c);
  torch::manual_seed(7);
  torch::NoGradGuard no_grad;
  router->weight.normal_(0, 0.2);
  router->e_score_correction_bias.zero_();
  // Varied tokens that all share one strong feature aligned with experts 0 and 1: without balancing
  // those two take almost every token.
  Tensor x = torch::randn({512, 32});
  x.select(1, 0).fill_(2.0);
  router->weight[0][0] = 2.0;
  router->weight[1][0] = 1.5;
  auto imbalance = [&] {
    router->reset_load();
    router->forward(x, {}, {});
    Tensor load = router->load();
    return (load.max() / load.mean()).item<double>();
  };
  double before = imbalance();
  for (int step = 0; step < 300; ++step) {
    router->forward(x, {}, {});
    router->update_bias(/*gamma=*/0.01);
  }
  double after = imbalance();
  CHECK(before > 3.0);
  CHECK(after < 1.5);
  CHECK(after < before);
}

TEST_CASE("load counts skip padding tokens") {
  MoeRouter router(router_config("noaux_tc", 4, 2, 2));
  Tensor x = torch::randn({6, 32});
  Tensor valid = torch::tensor({true, true, false, true, false, false});
  router->forward(x, {}, valid);
  CHECK(router->load().sum().item<double>() == 3 * 2);
}

TEST_CASE("routing replay reproduces recorded experts and outputs, and overrides selection") {
  CausalLM model = test::tiny_model(test::kTinyDeepSeekV3, 8);
  Tensor ids = torch::randint(0, 61, {2, 7}, torch::kLong);
  RoutingTrace trace;
  ModelInputs in;
  in.input_ids = ids;
  in.routing = &trace;
  Tensor recorded = model->forward(in);
  REQUIRE(trace.experts.size() == 2);  // layers 1 and 2 are MoE
  CHECK(trace.experts[0].sizes() == torch::IntArrayRef({2, 7, 2}));

  trace.mode = RoutingTrace::Mode::Replay;
  CHECK(test::max_relative_error(model->forward(in), recorded) < 1e-7);

  // Replaying other experts changes the output: the trace is really used.
  RoutingTrace other = trace;
  other.experts[0] = (trace.experts[0] + 1) % 8;
  in.routing = &other;
  CHECK(test::max_relative_error(model->forward(in), recorded) > 1e-4);
}

TEST_CASE("sequence-wise balance loss equals alpha * sum_i f_i P_i (hand computation)") {
  ModelConfig c = test::tiny_config(test::kTinyDeepSeekV3);
  c.moe.aux_loss_alpha = 0.01;
  torch::manual_seed(9);
  CausalLM model(c);
  model->train();
  Tensor ids = torch::randint(0, 61, {2, 5}, torch::kLong);
  Tensor mask = torch::ones({2, 5}, torch::kLong);
  mask[1][0] = 0;  // one padding token: excluded from f and P
  RoutingTrace trace;
  ModelInputs in;
  in.input_ids = ids;
  in.attention_mask = mask;
  in.routing = &trace;
  ModelOutputs out = model->forward_hidden(in);
  REQUIRE(out.aux_loss.defined());

  // Independent recomputation: run the body layer by layer (training mode, same weights) to get each
  // MoE layer's input, score the experts with its gate, and apply the formula with explicit loops.
  double expected = 0;
  std::vector<MoeRouter> routers = model->routers();
  torch::NoGradGuard no_grad;
  Tensor h = model->model->embed_tokens(ids);
  RoutingTrace ignore;
  ForwardContext ctx;
  Tensor pos = (mask.cumsum(1) - 1).clamp_min(0);  // left padding: real tokens before each one
  ctx.rope = RotaryEmbedding(c.rope, c.rope_dim()).angles(pos, h.scalar_type());
  Tensor causal = torch::arange(5).unsqueeze(0) <= torch::arange(5).unsqueeze(1);
  ctx.blocked = (causal.unsqueeze(0).unsqueeze(0) & mask.to(torch::kBool).unsqueeze(1).unsqueeze(2)).logical_not();
  ctx.token_mask = mask.to(torch::kBool);
  ctx.routing = &ignore;
  int moe_seen = 0;
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    DecoderLayer& layer = model->model->decoder_layers[l];
    if (layer->moe) {
      Tensor a = h + layer->mla(layer->input_layernorm(h), ctx);
      Tensor x = layer->post_attention_layernorm(a).reshape({10, 32});
      Tensor logits = torch::matmul(x, routers[moe_seen]->weight.t());
      Tensor s = torch::sigmoid(logits).view({2, 5, 8});
      Tensor e = trace.experts[moe_seen];
      for (int64_t b = 0; b < 2; ++b) {
        double tokens = mask[b].sum().item<double>();
        for (int64_t i = 0; i < 8; ++i) {
          double count = 0, p = 0;
          for (int64_t t = 0; t < 5; ++t) {
            if (mask[b][t].item<int64_t>() == 0) continue;
            count += (e[b][t] == i).sum().item<double>();
            p += (s[b][t][i] / s[b][t].sum()).item<double>();
          }
          double f = 8.0 / (2 * tokens) * count;
          expected += 0.01 * f * (p / tokens) / 2;  // mean over the 2 sequences
        }
      }
      ++moe_seen;
    }
    h = layer(h, ctx);
  }
  CHECK(out.aux_loss.item<double>() == doctest::Approx(expected).epsilon(1e-5));
}

TEST_CASE("padding reaches no routed expert: an expert only padding was sent to gets no gradient") {
  CausalLM model = test::tiny_model(test::kTinyDeepSeekV3, 8);
  Tensor ids = torch::randint(0, 61, {2, 7}, torch::kLong);
  Tensor mask = torch::ones({2, 7}, torch::kLong);
  mask[1].narrow(0, 0, 3).fill_(0);  // row 1: three positions of left padding
  // Real tokens go to experts 0 and 1, padding to 6 and 7, in both MoE layers.
  RoutingTrace trace;
  trace.mode = RoutingTrace::Mode::Replay;
  for (int layer = 0; layer < 2; ++layer) {
    Tensor experts = torch::tensor({int64_t{0}, int64_t{1}}).expand({2, 7, 2}).clone();
    experts[1].narrow(0, 0, 3).copy_(torch::tensor({int64_t{6}, int64_t{7}}).expand({3, 2}));
    trace.experts.push_back(experts);
  }
  ModelInputs in;
  in.input_ids = ids;
  in.attention_mask = mask;
  in.routing = &trace;
  Tensor logits = model->forward(in);  // [2, 7, V]
  (logits * mask.unsqueeze(-1).to(logits.dtype())).sum().backward();
  int reached = 0, padding_only = 0;
  for (const auto& p : model->named_parameters()) {
    const std::string& name = p.key();
    if (name.find(".experts.0.") != std::string::npos || name.find(".experts.1.") != std::string::npos) {
      ++reached;
      REQUIRE(p.value().grad().defined());
      CHECK(p.value().grad().abs().sum().item<double>() > 0);
    }
    if (name.find(".experts.6.") != std::string::npos || name.find(".experts.7.") != std::string::npos) {
      ++padding_only;
      INFO(name);
      CHECK_FALSE(p.value().grad().defined());
    }
  }
  CHECK(reached == 2 * 2 * 3);  // 2 layers x 2 experts x {gate, up, down}
  CHECK(padding_only == 2 * 2 * 3);
}

TEST_CASE("a bf16 placement keeps the correction biases in float32, so bias updates of 1e-3 are kept") {
  CausalLM model = test::tiny_model(test::kTinyDeepSeekV3, 4);
  place_model(model, resolve_placement("cpu", "bfloat16"));
  CHECK((model->model->embed_tokens->weight.scalar_type() == torch::kBFloat16));
  MoeRouter router = model->routers()[0];
  CHECK((router->weight.scalar_type() == torch::kBFloat16));
  REQUIRE((router->e_score_correction_bias.scalar_type() == torch::kFloat));
  torch::NoGradGuard no_grad;
  router->e_score_correction_bias.fill_(0.5);
  router->forward(torch::randn({64, model->config().hidden_size}).to(torch::kBFloat16), {}, {});
  router->update_bias(1e-3);  // 0.5 ± 1e-3: below bf16's spacing of 2^-9 there
  CHECK((router->e_score_correction_bias - 0.5).abs().max().item<double>() == doctest::Approx(1e-3).epsilon(1e-4));
  // A copy of the weights (the reference model, a run-ahead rollout worker) is placed the same way.
  CHECK((clone_weights(model)->routers()[0]->e_score_correction_bias.scalar_type() == torch::kFloat));
  CHECK_THROWS_WITH_AS(resolve_placement("cpu", "float16"),
                       "dtype \"float16\": float16 training needs loss scaling, which grpo does not do; use bfloat16",
                       std::invalid_argument);
}
