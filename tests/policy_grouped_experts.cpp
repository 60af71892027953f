// The grouped routed-expert paths (padded bmm, contiguous segments) against the per-expert loop they
// shortcut, in float64: outputs and the gradients of the input, the router and every expert weight,
// with padding, with experts that receive no token, with a replayed routing trace, in training (with
// the balance loss) and without autograd. And the loop itself against a token-by-token sum written
// out here from the recorded experts and the router's weights.
#include <doctest/doctest.h>

#include <map>
#include <string>

#include "policy/deepseek_moe.h"
#include "policy_test_models.h"

using namespace grpo;
using torch::Tensor;

namespace {

// A DeepSeekMoE layer of the tiny config `json` with seeded random weights (larger than the default
// init, so routing varies from token to token) and a random correction bias where the config has one.
DeepSeekMoe random_moe(const char* json, double aux_loss_alpha) {
  ModelConfig c = test::tiny_config(json);
  c.moe.aux_loss_alpha = aux_loss_alpha;
  torch::manual_seed(5);
  DeepSeekMoe moe(c, /*moe_index=*/0);
  torch::NoGradGuard no_grad;
  for (auto& p : moe->parameters()) p.normal_(0.0, 0.3);
  for (auto& b : moe->buffers()) b.copy_(torch::randn_like(b) * 0.05);
  moe->to(torch::kDouble);
  return moe;
}

struct Result {
  Tensor out;                         // [B, T, H]
  Tensor aux_loss;                    // undefined without the balance loss
  Tensor input_grad;                  // [B, T, H]
  std::map<std::string, Tensor> grads;  // parameter name -> gradient (undefined: none reached it)
  std::vector<Tensor> trace;          // recorded experts per layer
};

// One forward (and backward when `backward`) through `moe` on `path`. The loss weighs each output by
// a fixed random probe so that every output element's gradient differs.
Result run(DeepSeekMoe& moe, ExpertPath path, const Tensor& x_in, const Tensor& mask, RoutingTrace* trace, bool backward) {
  moe->set_expert_path(path);
  moe->zero_grad(/*set_to_none=*/true);
  Result r;
  Tensor x = x_in.clone().requires_grad_(backward);
  ForwardContext ctx;
  ctx.token_mask = mask;
  ctx.routing = trace;
  {
    torch::AutoGradMode grad_mode(backward);
    r.out = moe(x, ctx);
    r.aux_loss = ctx.aux_loss;
    if (backward) {
      torch::manual_seed(99);
      Tensor loss = (r.out * torch::randn_like(r.out)).sum();
      if (r.aux_loss.defined()) loss = loss + 10.0 * r.aux_loss;
      loss.backward();
      r.input_grad = x.grad().clone();
    }
  }
  for (const auto& item : moe->named_parameters()) {
    const Tensor& g = item.value().grad();
    r.grads[item.key()] = g.defined() ? g.clone() : Tensor();
  }
  if (trace) r.trace = trace->experts;
  return r;
}

// Grouped result `got` against the loop's `expected`: values, and the same set of parameters reached
// by a gradient with the same values. float64, different summation orders (bmm or segment gemm
// against gemm per expert): agreement to ~1e-15 relative; a wrong expert, weight or row is O(0.1) off.
void check_same(const Result& got, const Result& expected, bool gradients) {
  constexpr double tolerance = 1e-12;
  CHECK(test::max_relative_error(got.out, expected.out) < tolerance);
  REQUIRE(got.aux_loss.defined() == expected.aux_loss.defined());
  if (expected.aux_loss.defined()) CHECK(test::max_relative_error(got.aux_loss, expected.aux_loss) < tolerance);
  if (!gradients) return;
  CHECK(test::max_relative_error(got.input_grad, expected.input_grad) < tolerance);
  for (const auto& [name, grad] : expected.grads) {
    CAPTURE(name);
    const Tensor& g = got.grads.at(name);
    REQUIRE(g.defined() == grad.defined());
    if (grad.defined()) CHECK(test::max_relative_error(g, grad) < tolerance);
  }
}

// Experts (by index) that no parameter gradient reached in `r`.
std::vector<int64_t> experts_without_gradient(const Result& r, int64_t n_experts) {
  std::vector<int64_t> idle;
  for (int64_t e = 0; e < n_experts; ++e)
    if (!r.grads.at("experts." + std::to_string(e) + ".gate_proj.weight").defined()) idle.push_back(e);
  return idle;
}

constexpr ExpertPath kGroupedPaths[] = {ExpertPath::Padded, ExpertPath::Segments};

}  // namespace

TEST_CASE("grouped experts: the loop equals a token-by-token sum of the recorded experts") {
  // The reference the grouped paths are held to, checked on its own: each real token's output is the
  // shared experts plus Σ_j w_j · SwiGLU_{e_j}(x), computed here one token and one expert at a time
  // from the recorded experts and the router's weights; padding gets the shared experts only.
  DeepSeekMoe moe = random_moe(test::kTinyDeepSeekV3, 0.0);
  torch::NoGradGuard no_grad;
  const int64_t h = 32, k = 2;
  Tensor x = torch::randn({2, 5, h}, torch::kDouble);
  Tensor mask = torch::ones({2, 5}, torch::kBool);
  mask[1][0] = false;
  mask[1][1] = false;
  RoutingTrace trace;
  Result r = run(moe, ExpertPath::Loop, x, mask, &trace, /*backward=*/false);
  Routing routing = moe->gate(x.view({10, h}), trace.experts[0].view({10, k}), Tensor());
  auto swiglu = [](SwiGluMlp& m, const Tensor& v) {
    Tensor g = torch::mv(m->gate_proj->weight, v), u = torch::mv(m->up_proj->weight, v);
    return torch::mv(m->down_proj->weight, g / (1 + torch::exp(-g)) * u);
  };
  for (int64_t n = 0; n < 10; ++n) {
    CAPTURE(n);
    Tensor v = x.view({10, h})[n];
    Tensor expected = swiglu(moe->shared_experts, v);
    if (mask.view({10})[n].item<bool>())
      for (int64_t j = 0; j < k; ++j) {
        int64_t e = routing.experts[n][j].item<int64_t>();
        SwiGluMlp expert = moe->experts->ptr<SwiGluMlpImpl>(e);
        expected = expected + routing.weights[n][j] * swiglu(expert, v);
      }
    CHECK(test::max_relative_error(r.out.view({10, h})[n], expected) < 1e-13);
  }
}

TEST_CASE("grouped experts: padded and segments equal the loop, values and gradients, with padding") {
  for (const char* json : {test::kTinyDeepSeekV3, test::kTinyDeepSeekV2})
    for (bool training : {true, false}) {
      // Training with the sequence balance loss (its gradient reaches the router through the scores).
      DeepSeekMoe moe = random_moe(json, training ? 0.01 : 0.0);
      moe->train(training);
      CAPTURE(json);
      CAPTURE(training);
      const int64_t h = 32;
      torch::manual_seed(7);
      Tensor x = torch::randn({3, 11, h}, torch::kDouble);
      Tensor mask = torch::ones({3, 11}, torch::kBool);
      mask[0].narrow(0, 0, 4).fill_(false);  // left padding
      mask[2].narrow(0, 8, 3).fill_(false);  // right padding
      Result expected = run(moe, ExpertPath::Loop, x, mask, nullptr, /*backward=*/true);
      for (ExpertPath path : kGroupedPaths) {
        CAPTURE(expert_path_name(path));
        check_same(run(moe, path, x, mask, nullptr, true), expected, /*gradients=*/true);
        // Without autograd (rollout, reference log-probs): the same values.
        check_same(run(moe, path, x, mask, nullptr, false), run(moe, ExpertPath::Loop, x, mask, nullptr, false), false);
      }
    }
}

TEST_CASE("grouped experts: experts that receive no token get no gradient on any path") {
  // 3 tokens, one of them padding, 2 experts each: at most 4 of 8 experts run. The others must not
  // be touched (undefined gradient, not zero) on every path, like on the loop.
  DeepSeekMoe moe = random_moe(test::kTinyDeepSeekV3, 0.0);
  moe->train();
  torch::manual_seed(8);
  Tensor x = torch::randn({1, 3, 32}, torch::kDouble);
  Tensor mask = torch::tensor({true, false, true}).view({1, 3});
  Result expected = run(moe, ExpertPath::Loop, x, mask, nullptr, true);
  std::vector<int64_t> idle = experts_without_gradient(expected, 8);
  REQUIRE(idle.size() >= 4);
  for (ExpertPath path : kGroupedPaths) {
    CAPTURE(expert_path_name(path));
    Result got = run(moe, path, x, mask, nullptr, true);
    check_same(got, expected, true);
    CHECK(experts_without_gradient(got, 8) == idle);
  }
  // Every token padding: no routed expert runs at all, only the shared experts.
  Tensor none = torch::zeros({1, 3}, torch::kBool);
  Result all_padding = run(moe, ExpertPath::Loop, x, none, nullptr, true);
  CHECK(experts_without_gradient(all_padding, 8).size() == 8);
  for (ExpertPath path : kGroupedPaths) {
    CAPTURE(expert_path_name(path));
    check_same(run(moe, path, x, none, nullptr, true), all_padding, true);
  }
}

TEST_CASE("grouped experts: a replayed routing trace gives the loop's values and gradients") {
  // The trainer replays the experts the rollout chose. Recorded on one input, replayed on another:
  // the replayed experts differ from what the new input would select, so the router's weights (and
  // their gradient) come from the current scores of experts it would not have picked.
  for (const char* json : {test::kTinyDeepSeekV3, test::kTinyDeepSeekV2}) {
    CAPTURE(json);
    DeepSeekMoe moe = random_moe(json, 0.0);
    moe->train();
    torch::manual_seed(9);
    Tensor recorded_on = torch::randn({2, 6, 32}, torch::kDouble), x = torch::randn({2, 6, 32}, torch::kDouble);
    Tensor mask = torch::ones({2, 6}, torch::kBool);
    mask[1][0] = false;
    RoutingTrace record;
    run(moe, ExpertPath::Loop, recorded_on, mask, &record, false);
    REQUIRE(record.experts.size() == 1);

    RoutingTrace replay_loop{RoutingTrace::Mode::Replay, record.experts};
    Result expected = run(moe, ExpertPath::Loop, x, mask, &replay_loop, true);
    RoutingTrace fresh;
    Result unreplayed = run(moe, ExpertPath::Loop, x, mask, &fresh, false);
    REQUIRE_FALSE(torch::equal(fresh.experts[0], record.experts[0]));  // replay changes the routing
    for (ExpertPath path : kGroupedPaths) {
      CAPTURE(expert_path_name(path));
      RoutingTrace replay{RoutingTrace::Mode::Replay, record.experts};
      check_same(run(moe, path, x, mask, &replay, true), expected, true);
      CHECK(test::max_relative_error(run(moe, path, x, mask, &replay, false).out, unreplayed.out) > 1e-3);
    }
  }
}

TEST_CASE("grouped experts: a model on each path gives the loop's logits and parameter gradients") {
  // The whole tiny DeepSeek-V3 model (two MoE layers) switched with set_expert_path: logits and the
  // gradient of every parameter, with a padded row.
  CausalLM model = test::tiny_model(test::kTinyDeepSeekV3, 3, torch::kDouble);
  model->train();
  Tensor ids = torch::randint(0, 61, {2, 9}, torch::kLong);
  Tensor mask = torch::ones({2, 9}, torch::kLong);
  mask[0].narrow(0, 0, 3).fill_(0);
  auto run_model = [&](ExpertPath path) {
    set_expert_path(*model, path);
    model->zero_grad(true);
    ModelInputs in;
    in.input_ids = ids;
    in.attention_mask = mask;
    Tensor logits = model->forward(in);
    (logits * logits).sum().backward();
    std::map<std::string, Tensor> grads;
    for (const auto& item : model->named_parameters())
      grads[item.key()] = item.value().grad().defined() ? item.value().grad().clone() : Tensor();
    return std::pair{logits.detach(), grads};
  };
  auto [expected_logits, expected_grads] = run_model(ExpertPath::Loop);
  for (ExpertPath path : kGroupedPaths) {
    CAPTURE(expert_path_name(path));
    auto [logits, grads] = run_model(path);
    CHECK(test::max_relative_error(logits, expected_logits) < 1e-12);
    for (const auto& [name, grad] : expected_grads) {
      CAPTURE(name);
      REQUIRE(grads.at(name).defined() == grad.defined());
      if (grad.defined()) CHECK(test::max_relative_error(grads.at(name), grad) < 1e-10);
    }
  }
}

TEST_CASE("grouped experts: auto takes the loop with autograd and segments without, the same values") {
  DeepSeekMoe moe = random_moe(test::kTinyDeepSeekV3, 0.0);
  torch::manual_seed(10);
  Tensor x = torch::randn({2, 7, 32}, torch::kDouble);
  Tensor mask = torch::ones({2, 7}, torch::kBool);
  mask[0][0] = false;
  // Which path ran shows in the last bits: each is deterministic, so auto equals its choice exactly.
  CHECK(torch::equal(run(moe, ExpertPath::Auto, x, mask, nullptr, true).out, run(moe, ExpertPath::Loop, x, mask, nullptr, true).out));
  CHECK(torch::equal(run(moe, ExpertPath::Auto, x, mask, nullptr, false).out,
                     run(moe, ExpertPath::Segments, x, mask, nullptr, false).out));
}

TEST_CASE("grouped experts: an unknown path name is an error naming the accepted ones") {
  CHECK(parse_expert_path("auto") == ExpertPath::Auto);
  CHECK(parse_expert_path("padded") == ExpertPath::Padded);
  CHECK(parse_expert_path("segments") == ExpertPath::Segments);
  CHECK(parse_expert_path("loop") == ExpertPath::Loop);
  try {
    parse_expert_path("bmm");
    FAIL("no error");
  } catch (const std::invalid_argument& e) {
    CHECK(std::string(e.what()).find("'bmm'") != std::string::npos);
    CHECK(std::string(e.what()).find("loop, padded, segments or auto") != std::string::npos);
  }
}
