// Chunked per-token log-probabilities against log_softmax of the full logits.
#include <doctest/doctest.h>

#include "policy/token_logprobs.h"
#include "policy_test_models.h"

using namespace grpo;
using torch::Tensor;

TEST_CASE("chunked log-probs equal log_softmax(full logits / T) at the next tokens") {
  for (const char* json : test::kAllTinyConfigs) {
    CausalLM model = test::tiny_model(json, 41, torch::kDouble);
    CAPTURE(model->config().model_type);
    Tensor ids = torch::randint(0, 61, {2, 9}, torch::kLong);
    LogprobOptions options;
    options.temperature = 0.7;
    options.chunk_positions = 3;  // 8 positions in chunks of 3, 3, 2
    Tensor got = token_logprobs(model, ids, {}, options);
    REQUIRE(got.sizes() == torch::IntArrayRef({2, 8}));

    ModelInputs in;
    in.input_ids = ids;
    Tensor logits = model->forward(in).narrow(1, 0, 8) / 0.7;
    // Independent: explicit exp/sum normalisation in float64.
    Tensor probs = logits.exp() / logits.exp().sum(-1, true);
    Tensor expected = probs.gather(-1, ids.narrow(1, 1, 8).unsqueeze(-1)).squeeze(-1).log();
    CHECK((got.scalar_type() == torch::kFloat));
    CHECK(test::max_relative_error(got, expected) < 1e-6);
  }
}

TEST_CASE("log-probs carry gradients to the weights") {
  CausalLM model = test::tiny_model(test::kTinyQwen2, 42);
  Tensor ids = torch::randint(0, 61, {1, 6}, torch::kLong);
  token_logprobs(model, ids).sum().backward();
  CHECK(model->model->embed_tokens->weight.grad().abs().sum().item<double>() > 0);
}
