// Gradients of a tiny model's loss checked against central finite differences in float64, for sampled
// parameters of every kind of block (MLA projections, router gate, experts, norms, embeddings, head).
#include <doctest/doctest.h>

#include <cmath>

#include "policy_test_models.h"

using namespace grpo;
using torch::Tensor;

namespace {

Tensor loss_of(CausalLM& model, const Tensor& ids) {
  ModelInputs in;
  in.input_ids = ids.narrow(1, 0, ids.size(1) - 1);
  Tensor logits = model->forward(in);
  Tensor targets = ids.narrow(1, 1, ids.size(1) - 1);
  return torch::nn::functional::cross_entropy(logits.reshape({-1, logits.size(-1)}), targets.reshape({-1}));
}

void check_gradients(const char* json, const std::vector<std::string>& names) {
  CausalLM model = test::tiny_model(json, 21, torch::kDouble);
  CAPTURE(model->config().model_type);
  Tensor ids = torch::randint(0, 61, {2, 7}, torch::kLong);
  model->zero_grad();
  loss_of(model, ids).backward();
  auto params = model->named_parameters();
  torch::NoGradGuard no_grad;
  for (const std::string& name : names) {
    CAPTURE(name);
    Tensor* p = params.find(name);
    REQUIRE(p != nullptr);
    Tensor flat = p->view({-1});
    Tensor grad = p->grad().view({-1});
    for (int64_t i : {int64_t{0}, flat.numel() / 2, flat.numel() - 1}) {
      const double eps = 1e-5, saved = flat[i].item<double>();
      flat[i] = saved + eps;
      double up = loss_of(model, ids).item<double>();
      flat[i] = saved - eps;
      double down = loss_of(model, ids).item<double>();
      flat[i] = saved;
      double numeric = (up - down) / (2 * eps);
      // Central differences: truncation error ~eps²·f''' and rounding ~1e-16·|loss|/eps, both < 1e-8.
      CHECK(std::abs(grad[i].item<double>() - numeric) <= 1e-5 * std::abs(numeric) + 1e-8);
    }
  }
}

}  // namespace

TEST_CASE("finite differences: DeepSeek (MLA with q-LoRA, MoE with groups and bias)") {
  check_gradients(test::kTinyDeepSeekV3,
                  {"model.embed_tokens.weight", "model.layers.0.self_attn.q_a_proj.weight",
                   "model.layers.0.self_attn.q_a_layernorm.weight", "model.layers.1.self_attn.kv_b_proj.weight",
                   "model.layers.1.self_attn.kv_a_proj_with_mqa.weight", "model.layers.1.mlp.gate.weight",
                   "model.layers.2.mlp.experts.3.down_proj.weight", "model.layers.2.mlp.shared_experts.up_proj.weight",
                   "model.layers.0.mlp.gate_proj.weight", "model.norm.weight", "lm_head.weight"});
}

TEST_CASE("finite differences: Qwen2 (GQA with biases, tied head)") {
  check_gradients(test::kTinyQwen2,
                  {"model.embed_tokens.weight", "model.layers.0.self_attn.q_proj.bias", "model.layers.1.self_attn.k_proj.weight",
                   "model.layers.1.self_attn.v_proj.bias", "model.layers.0.post_attention_layernorm.weight"});
}
