// The GRPO trainer end to end: real rollouts, real Lua rules, real updates.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <stdexcept>

#include "policy/token_logprobs.h"
#include "policy/tokenizer/tokenizer.h"
#include "policy_test_models.h"
#include "rl/grpo_trainer.h"

using namespace grpo;
using torch::Tensor;

namespace {

const char* kStartsWithA = R"(
return { { name = "accuracy", weight = 1.0,
           rule = function(s) if s.completion:sub(1, 1) == "a" then return 1 else return 0 end end } }
)";

struct TrainerFixture {
  Tokenizer tok = Tokenizer::make_char_level("abcdefgh", {"<pad>", "<eos>"});
  std::vector<PromptExample> prompts;

  TrainerFixture() {
    for (const char* p : {"bc", "de", "fg", "hb"}) prompts.push_back({p, tok.encode(p), nlohmann::json::object()});
  }
  CausalLM model(const char* json, uint64_t seed) {
    ModelConfig c = test::tiny_config(json);
    c.vocab_size = tok.vocab_size();
    torch::manual_seed(seed);
    return CausalLM(c);
  }
  GrpoConfig config() {
    GrpoConfig g;
    g.group_size = 8;
    g.seed = 3;
    g.stop.max_new_tokens = 3;
    g.stop.stop_ids = {tok.eos_id()};
    g.lr.peak = 1e-2;
    g.adamw.weight_decay = 0.0;
    g.micro_batch_size = 8;
    g.reward_threads = 1;
    return g;
  }
};

// `drift`: the largest mean |rollout − training| log-prob difference allowed (float32: rounding only;
// bf16: the decode and training forwards round differently).
double learn(TrainerFixture& f, CausalLM model, GrpoConfig config, int steps, double* first, double drift = 1e-4) {
  GrpoTrainer trainer(model, f.tok, rewards::RuleSet::from_source(kStartsWithA, "starts_with_a.lua"), config);
  double last = 0;
  for (int s = 0; s < steps; ++s) {
    StepResult r = trainer.step(f.prompts);
    CHECK_FALSE(r.skipped);
    if (s == 0) *first = r.metrics.at("reward");
    if (s >= steps - 3) last += r.metrics.at("reward") / 3;
    CHECK(r.metrics.at("rollout/logprob_diff_mean") < drift);  // rollout and training agree on log-probs
  }
  return last;
}

}  // namespace

TEST_CASE("GRPO teaches a tiny dense policy to start its answer with 'a'") {
  TrainerFixture f;
  double first = 0;
  double last = learn(f, f.model(test::kTinyQwen2, 1), f.config(), 25, &first);
  MESSAGE("mean reward: first step " << first << ", last three steps " << last);
  CHECK(first < 0.2);
  CHECK(last > 0.8);
}

TEST_CASE("GRPO with routing replay and a KL term teaches a tiny MoE policy the same") {
  TrainerFixture f;
  GrpoConfig config = f.config();
  config.objective.policy.kl_coef = 0.01;
  config.objective.policy.clip_high = 0.28;
  double first = 0;
  double last = learn(f, f.model(test::kTinyDeepSeekV3, 2), config, 25, &first);
  MESSAGE("mean reward: first step " << first << ", last three steps " << last);
  CHECK(first < 0.2);
  CHECK(last > 0.8);
}

TEST_CASE("a bf16 MoE policy learns too: float32 router scores, log-probs, loss and master weights") {
  TrainerFixture f;
  GrpoConfig config = f.config();
  config.objective.policy.kl_coef = 0.01;
  CausalLM model = f.model(test::kTinyDeepSeekV3, 2);
  model->to(torch::kBFloat16);
  {
    torch::NoGradGuard no_grad;
    Tensor x = torch::randn({3, model->config().hidden_size}).to(torch::kBFloat16);
    CHECK((model->routers()[0]->forward(x, {}, {}).scores.scalar_type() == torch::kFloat));
    ModelInputs in;
    in.input_ids = torch::randint(0, f.tok.vocab_size(), {2, 5}, torch::kLong);
    ModelOutputs out = model->forward_hidden(in);
    CHECK((logprobs_from_hidden(model, out.hidden.narrow(1, 0, 4), in.input_ids.narrow(1, 1, 4), {}).scalar_type() == torch::kFloat));
  }
  double first = 0;
  double last = learn(f, model, config, 25, &first, /*drift=*/0.05);
  MESSAGE("bf16 mean reward: first step " << first << ", last three steps " << last);
  CHECK(first < 0.2);
  CHECK(last > 0.8);
  for (const Tensor& p : model->parameters()) CHECK((p.scalar_type() == torch::kBFloat16));
}

TEST_CASE("micro-batching leaves the update unchanged") {
  TrainerFixture f;
  std::vector<Tensor> after[2], before;
  const int64_t micro[2] = {32, 3};
  for (int run = 0; run < 2; ++run) {
    GrpoConfig config = f.config();
    config.micro_batch_size = micro[run];
    config.objective.aggregation = LossAggregation::SeqMeanTokenMean;
    // With eps = 1 the first AdamW step is smooth in the gradient (≈ lr·g for small g): float rounding
    // differences in the accumulated gradient stay rounding-sized instead of flipping a sign(g) update.
    config.adamw.eps = 1.0;
    GrpoTrainer trainer(f.model(test::kTinyQwen2, 4), f.tok, rewards::RuleSet::from_source(kStartsWithA, "a.lua"), config);
    if (run == 0)
      for (const Tensor& p : trainer.policy()->parameters()) before.push_back(p.detach().clone());
    trainer.step(f.prompts);
    for (const Tensor& p : trainer.policy()->parameters()) after[run].push_back(p.detach().clone());
  }
  double worst = 0, moved = 0;
  for (size_t i = 0; i < after[0].size(); ++i) {
    worst = std::max(worst, (after[0][i] - after[1][i]).abs().max().item<double>());
    moved = std::max(moved, (after[0][i] - before[i]).abs().max().item<double>());
  }
  MESSAGE("largest parameter update " << moved << ", largest difference between the two runs " << worst);
  CHECK(moved > 1e-5);
  CHECK(worst < 1e-4 * moved);
}

TEST_CASE("dynamic sampling refills zero-variance groups from the prompt source") {
  TrainerFixture f;
  GrpoConfig config = f.config();
  config.drop_zero_variance_groups = true;
  // A rule that is constant for prompts starting with "b": those groups carry no signal.
  const char* rule = R"(return function(s)
    if s.prompt:sub(1, 1) == "b" then return 1 end
    return s.completion:sub(1, 1) == "a" and 1 or 0 end)";
  GrpoTrainer trainer(f.model(test::kTinyQwen2, 5), f.tok, rewards::RuleSet::from_source(rule, "rule.lua"), config);
  int64_t asked = 0;
  auto more = [&](int64_t n) {
    asked += n;
    std::vector<PromptExample> out;
    for (int64_t i = 0; i < n; ++i) out.push_back({"cc", f.tok.encode("cc"), nlohmann::json::object()});
    return out;
  };
  StepResult r = trainer.step(f.prompts, more);
  CHECK(asked >= 1);  // the "bc" group was zero-variance and replaced
  CHECK(r.metrics.at("groups/sampled") == 4 + asked);
  CHECK(r.metrics.at("frac_reward_zero_std") > 0);
}

TEST_CASE("GRPO learns a prompt-dependent task: answer with the prompt's last character") {
  // A rule that depends on the prompt catches any mix-up between prompts, completions and rewards,
  // which a prompt-independent task cannot.
  TrainerFixture f;
  const char* copy_last = R"(
return { { name = "accuracy", rule = function(s)
  return s.completion:sub(1, 1) == s.prompt:sub(-1) and 1 or 0 end } })";
  std::vector<PromptExample> prompts;
  for (const char* p : {"ab", "bc", "cd", "de", "ef", "fg", "gh", "ha"}) prompts.push_back({p, f.tok.encode(p), nlohmann::json::object()});
  GrpoConfig config = f.config();
  config.lr.peak = 3e-3;  // at 1e-2 some prompts collapse to one wrong answer before they are learned
  GrpoTrainer trainer(f.model(test::kTinyDeepSeekV3, 6), f.tok, rewards::RuleSet::from_source(copy_last, "copy.lua"), config);
  double first = 0, last = 0;
  const int steps = 120;
  for (int s = 0; s < steps; ++s) {
    double reward = trainer.step(prompts).metrics.at("reward");
    if (s == 0) first = reward;
    if (s >= steps - 3) last += reward / 3;
  }
  MESSAGE("mean reward: first step " << first << ", last three steps " << last);
  CHECK(first < 0.3);
  CHECK(last > 0.8);
}

TEST_CASE("a non-finite loss skips the update and is counted; K such steps in a row stop training, saying so") {
  TrainerFixture f;
  CausalLM model = f.model(test::kTinyQwen2, 4);
  // A reference whose weights are NaN: its log-probs, the KL term and so the loss are NaN while the
  // policy itself (and its rollouts) stay finite.
  ReferenceModel reference = ReferenceModel::copy_of(model);
  {
    torch::NoGradGuard no_grad;
    for (auto& p : reference.model()->parameters()) p.fill_(std::numeric_limits<float>::quiet_NaN());
  }
  GrpoConfig g = f.config();
  g.objective.policy.kl_coef = 0.1;
  g.max_consecutive_skips = 3;
  GrpoTrainer trainer(model, f.tok, rewards::RuleSet::from_source(kStartsWithA, "starts_with_a.lua"), g, std::move(reference));
  std::vector<Tensor> before;
  for (const Tensor& p : trainer.policy()->parameters()) before.push_back(p.detach().clone());
  for (int s = 0; s < 2; ++s) {
    StepResult r = trainer.step(f.prompts);
    CHECK(r.skipped);
    CHECK(r.metrics.at("train/skipped_updates") == 1);
    CHECK(r.metrics.at("train/optimizer_steps") == 0);
    CHECK(std::isnan(r.metrics.at("grad_norm")));
  }
  const std::vector<Tensor> after = trainer.policy()->parameters();
  for (size_t i = 0; i < before.size(); ++i) CHECK(torch::equal(before[i], after[i]));  // no update was applied
  try {
    trainer.step(f.prompts);
    FAIL("a third non-finite step in a row did not stop training");
  } catch (const std::runtime_error& e) {
    CHECK(std::string(e.what()).find("3 steps in a row had a non-finite loss or gradient") != std::string::npos);
  }
}
