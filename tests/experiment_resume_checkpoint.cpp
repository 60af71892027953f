// Training checkpoints: a trainer restored from a checkpoint continues exactly as the original run,
// bitwise, with every piece of state in play (AdamW moments, LR warm-up, reference resets, MoE router
// bias updates, reward-rule failure counts, warning streaks, the data cursor).
#include <doctest/doctest.h>
#include <fmt/core.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "policy/tokenizer/tokenizer.h"
#include "policy_test_models.h"
#include "rl/grpo_trainer.h"
#include "rl/experiment/shuffled_cursor.h"
#include "rl/experiment/train_checkpoint.h"

using namespace grpo;
namespace fs = std::filesystem;

namespace {

// Rewards a leading "a"; the rule errors on completions starting with "h" so failures are counted.
const char* kRules = R"(
return { { name = "accuracy", rule = function(s)
             if s.completion:sub(1, 1) == "h" then error("no h") end
             return s.completion:sub(1, 1) == "a" and 1 or 0 end } }
)";

struct Run {
  Tokenizer tok = Tokenizer::make_char_level("abcdefgh", {"<pad>", "<eos>"});
  std::vector<PromptExample> prompts;

  Run() {
    for (const char* p : {"bc", "de", "fg", "hb", "ca", "eh"}) prompts.push_back({p, tok.encode(p), nlohmann::json::object()});
  }
  // A fresh trainer from the same initial weights each time, as a rerun of the same stage builds it.
  GrpoTrainer trainer() {
    ModelConfig c = test::tiny_config(test::kTinyDeepSeekV3);
    c.vocab_size = tok.vocab_size();
    torch::manual_seed(11);
    GrpoConfig g;
    g.group_size = 4;
    g.seed = 5;
    g.stop.max_new_tokens = 3;
    g.stop.stop_ids = {tok.eos_id()};
    g.lr = {3e-3, /*warmup_steps=*/3, LrDecay::Constant, 0, 0.0};
    g.objective.policy.kl_coef = 0.05;
    g.reference_reset_every = 2;
    g.router_bias_update = 1e-3;
    g.micro_batch_size = 4;
    g.minibatches = 2;
    g.reward_threads = 1;
    return GrpoTrainer(CausalLM(c), tok, rewards::RuleSet::from_source(kRules, "rules.lua"), g);
  }
  // One step on the next prompts of the cursor, the way grpo run feeds the trainer.
  StepMetrics step(GrpoTrainer& t, ShuffledCursor& cursor) {
    std::vector<PromptExample> batch;
    for (int i = 0; i < 2; ++i) batch.push_back(prompts[cursor.next()]);
    StepMetrics m = t.step(batch).metrics;
    for (auto it = m.begin(); it != m.end();)  // wall-clock fields differ between any two runs
      it = it->first.rfind("timing/", 0) == 0 || it->first.rfind("tokens_per_second/", 0) == 0 ? m.erase(it) : std::next(it);
    return m;
  }
};

std::string temporary_directory(const char* name) {
  fs::path p = fs::temp_directory_path() / fmt::format("grpo-{}-{}", name, getpid());
  fs::remove_all(p);
  return p.string();
}

}  // namespace

TEST_CASE("a trainer restored from a checkpoint continues bitwise as the uninterrupted run") {
  Run run;
  const int kSteps = 7, kSavedAt = 4;  // past a reference reset (step 2) and the warm-up (3 updates)
  std::vector<StepMetrics> uninterrupted;
  std::vector<torch::Tensor> final_weights;
  {
    GrpoTrainer t = run.trainer();
    ShuffledCursor cursor(run.prompts.size(), 5);
    for (int s = 0; s < kSteps; ++s) uninterrupted.push_back(run.step(t, cursor));
    for (const torch::Tensor& p : t.policy()->parameters()) final_weights.push_back(p.detach().clone());
  }

  const std::string dir = temporary_directory("resume");
  {
    GrpoTrainer t = run.trainer();
    ShuffledCursor cursor(run.prompts.size(), 5);
    for (int s = 0; s < kSavedAt; ++s) CHECK(run.step(t, cursor) == uninterrupted[s]);
    save_train_checkpoint(dir, t, run.tok, {{"data", cursor.state()}}, /*keep=*/0);
    run.step(t, cursor);  // the killed run went on a little past its checkpoint
  }
  GrpoTrainer resumed = run.trainer();
  ShuffledCursor cursor(run.prompts.size(), 5);
  std::vector<TrainCheckpoint> saved = list_train_checkpoints(dir);
  REQUIRE(saved.size() == 1);
  CHECK(saved[0].step == kSavedAt);
  CHECK(fs::exists(saved[0].directory + "/reference/model.safetensors"));  // reset at step 2, so saved
  cursor.restore(load_train_checkpoint(saved[0].directory, resumed).at("data"));
  CHECK(resumed.steps_done() == kSavedAt);
  for (int s = kSavedAt; s < kSteps; ++s) {
    StepMetrics m = run.step(resumed, cursor);
    CHECK(m == uninterrupted[s]);
    if (m != uninterrupted[s])
      for (const auto& [k, v] : m)
        if (!uninterrupted[s].count(k) || uninterrupted[s].at(k) != v) MESSAGE("step " << s << " " << k << ": " << v);
  }
  // The things a metric might not show: every weight, and the router biases among the buffers.
  std::vector<torch::Tensor> weights = resumed.policy()->parameters();
  REQUIRE(weights.size() == final_weights.size());
  for (size_t i = 0; i < weights.size(); ++i) CHECK(torch::equal(weights[i], final_weights[i]));
  CHECK(uninterrupted.back().at("rewards/accuracy/failures") > 0);  // the failure counter was exercised
  fs::remove_all(dir);
}

TEST_CASE("checkpoints: only complete step-N folders are listed, and the newest K are kept") {
  Run run;
  const std::string dir = temporary_directory("keep");
  GrpoTrainer t = run.trainer();
  ShuffledCursor cursor(run.prompts.size(), 5);
  for (int s = 0; s < 3; ++s) {
    run.step(t, cursor);
    save_train_checkpoint(dir, t, run.tok, nlohmann::json::object(), /*keep=*/2);
  }
  fs::create_directories(dir + "/.tmp-step-9");  // what a kill in the middle of a save leaves
  fs::create_directories(dir + "/step-x");
  std::vector<TrainCheckpoint> saved = list_train_checkpoints(dir);
  REQUIRE(saved.size() == 2);
  CHECK(saved[0].step == 2);
  CHECK(saved[1].step == 3);
  CHECK_FALSE(fs::exists(dir + "/step-1"));
  // A checkpoint is an ordinary model directory.
  CHECK(fs::exists(saved[1].directory + "/config.json"));
  CHECK(fs::exists(saved[1].directory + "/tokenizer.json"));
  // The next save of the same step removes the leftover temporary folder.
  fs::create_directories(dir + "/.tmp-step-4/junk");
  run.step(t, cursor);
  save_train_checkpoint(dir, t, run.tok, nlohmann::json::object(), /*keep=*/0);
  CHECK_FALSE(fs::exists(dir + "/.tmp-step-4"));
  CHECK(fs::exists(dir + "/step-4/optimizer.pt"));
  fs::remove_all(dir);
}

TEST_CASE("a checkpoint of another rule set is refused with a message naming it") {
  Run run;
  const std::string dir = temporary_directory("refuse");
  GrpoTrainer t = run.trainer();
  ShuffledCursor cursor(run.prompts.size(), 5);
  run.step(t, cursor);
  const std::string saved = save_train_checkpoint(dir, t, run.tok, nlohmann::json::object(), 0);
  nlohmann::json state;
  std::ifstream(saved + "/trainer_state.json") >> state;
  state["trainer"]["reward_rule_failures"]["format"] = 0;
  std::ofstream(saved + "/trainer_state.json") << state.dump();
  GrpoTrainer other = run.trainer();
  CHECK_THROWS_WITH_AS(load_train_checkpoint(saved, other), doctest::Contains("2 reward rules, this rule set has 1"),
                       std::runtime_error);
  fs::remove_all(dir);
}
