// Silent-failure warnings and DAPO's soft overlong punishment: the monitor on its own with hand-made
// step sequences, the penalty against hand-worked values, and both inside a real trainer.
#include <doctest/doctest.h>

#include <set>

#include "policy/tokenizer/tokenizer.h"
#include "policy_test_models.h"
#include "rl/grpo_trainer.h"
#include "rl/overlong_penalty.h"
#include "rl/training_warnings.h"

using namespace grpo;

TEST_CASE("soft overlong punishment matches DAPO eq. 13 at hand-worked lengths") {
  OverlongPenalty p{/*max_length=*/10, /*buffer=*/4, /*factor=*/1.0};
  // Free up to L_max − L_cache = 6, then ((10 − 4) − |y|) / 4, and −1 past L_max.
  CHECK(soft_overlong_penalty(p, 0) == 0.0);
  CHECK(soft_overlong_penalty(p, 6) == 0.0);
  CHECK(soft_overlong_penalty(p, 7) == -0.25);
  CHECK(soft_overlong_penalty(p, 8) == -0.5);
  CHECK(soft_overlong_penalty(p, 9) == -0.75);
  CHECK(soft_overlong_penalty(p, 10) == -1.0);
  CHECK(soft_overlong_penalty(p, 11) == -1.0);
  p.factor = 0.5;  // verl's overlong_penalty_factor scales it
  CHECK(soft_overlong_penalty(p, 8) == -0.25);
  CHECK(soft_overlong_penalty(p, 12) == -0.5);
  p.buffer = 0;  // off
  CHECK(soft_overlong_penalty(p, 10) == 0.0);
  CHECK_THROWS_WITH_AS(validate(OverlongPenalty{10, 11, 1.0}), doctest::Contains("overlong_buffer must be between 0 and max_new_tokens (10)"),
                       std::invalid_argument);
  CHECK_THROWS_AS(validate(OverlongPenalty{10, 2, -1.0}), std::invalid_argument);
}

TEST_CASE("every reward zero warns once after M steps in a row, again only after it cleared") {
  SilentFailureMonitor monitor({/*zero_reward_steps=*/3, /*truncated_fraction=*/0.5});
  auto zero = [](int64_t step, bool all_zero) {
    StepHealth h;
    h.step = step;
    h.all_rewards_zero = all_zero;
    h.groups = 2;
    h.zero_variance_groups = 1;  // keep the zero-variance warning out of this test
    return h;
  };
  std::vector<size_t> warned;
  const bool pattern[] = {true, true, true, true, true, false, true, true, true};
  for (int64_t s = 0; s < 9; ++s)
    if (!monitor.observe(zero(s, pattern[s])).empty()) warned.push_back(static_cast<size_t>(s));
  CHECK(warned == std::vector<size_t>{2, 8});
  std::map<std::string, double> m;
  monitor.add_metrics(m);
  CHECK(m.at("warnings/all_rewards_zero") == 2);
  CHECK(m.at("warnings/mostly_truncated") == 0);
}

TEST_CASE("truncation and zero-variance warnings fire when the condition begins") {
  SilentFailureMonitor monitor;
  StepHealth h;
  h.groups = 4;
  h.max_new_tokens = 64;
  h.truncated_fraction = 0.75;
  std::vector<std::string> w = monitor.observe(h);
  REQUIRE(w.size() == 1);
  CHECK(w[0].find("75% of completions stopped at max_new_tokens (64)") != std::string::npos);
  CHECK(monitor.observe(h).empty());  // still the same occurrence
  h.truncated_fraction = 0.5;         // not "most": clears
  CHECK(monitor.observe(h).empty());
  h.truncated_fraction = 0.9;
  CHECK(monitor.observe(h).size() == 1);

  h.truncated_fraction = 0;
  h.zero_variance_groups = 4;
  w = monitor.observe(h);
  REQUIRE(w.size() == 1);
  CHECK(w[0].find("every group (4)") != std::string::npos);
  h.zero_variance_groups = 3;
  CHECK(monitor.observe(h).empty());
  std::map<std::string, double> m;
  monitor.add_metrics(m);
  CHECK(m.at("warnings/mostly_truncated") == 2);
  CHECK(m.at("warnings/all_groups_zero_variance") == 1);

  // The state round-trips, so a resumed run does not warn again about an occurrence in progress.
  h.zero_variance_groups = 4;
  monitor.observe(h);
  SilentFailureMonitor resumed;
  resumed.restore(monitor.state());
  CHECK(resumed.observe(h).empty());
}

namespace {
struct TinyTask {
  Tokenizer tok = Tokenizer::make_char_level("abcdefgh", {"<pad>", "<eos>"});
  std::vector<PromptExample> prompts;
  TinyTask() {
    for (const char* p : {"bc", "de"}) prompts.push_back({p, tok.encode(p), nlohmann::json::object()});
  }
  GrpoTrainer trainer(const char* rules, GrpoConfig g) {
    ModelConfig c = test::tiny_config(test::kTinyQwen2);
    c.vocab_size = tok.vocab_size();
    torch::manual_seed(3);
    g.group_size = 4;
    g.stop.max_new_tokens = 4;
    g.stop.stop_ids = {tok.eos_id()};
    g.reward_threads = 1;
    return GrpoTrainer(CausalLM(c), tok, rewards::RuleSet::from_source(rules, "rules.lua"), g);
  }
};
}  // namespace

TEST_CASE("the trainer adds the overlong penalty to each sample's reward by its length") {
  TinyTask task;
  GrpoConfig g;
  g.overlong_buffer = 2;  // free up to 2 tokens; 3 tokens: −0.5; 4 (= max_new_tokens): −1
  g.overlong_penalty = 1.0;
  GrpoTrainer t = task.trainer("return function(s) return 1 end", g);
  StepResult r = t.step(task.prompts);
  double penalty_sum = 0;
  std::set<int64_t> lengths;
  for (const ScoredSample& s : r.samples) {
    const double expected = s.completion_tokens <= 2 ? 0.0 : s.completion_tokens == 3 ? -0.5 : -1.0;
    CHECK(s.reward == doctest::Approx(1.0 + expected).epsilon(1e-12));
    penalty_sum += expected;
    lengths.insert(s.completion_tokens);
  }
  CHECK(lengths.count(4) == 1);  // an untrained policy rarely stops early: the penalty was exercised
  CHECK(r.metrics.at("rewards/overlong_penalty") == doctest::Approx(penalty_sum / r.samples.size()));
  CHECK(r.metrics.at("reward") == doctest::Approx(1.0 + penalty_sum / r.samples.size()));
  CHECK(r.metrics.at("rewards/rules") == 1.0);  // the rule's own value is unshaped
}

TEST_CASE("a run whose rules never pay warns after M steps and counts it in the metrics") {
  TinyTask task;
  GrpoConfig g;
  g.warnings.zero_reward_steps = 2;
  GrpoTrainer t = task.trainer("return function(s) return 0 end", g);
  auto has = [](const StepResult& r, const char* text) {
    for (const std::string& w : r.warnings)
      if (w.find(text) != std::string::npos) return true;
    return false;
  };
  StepResult first = t.step(task.prompts);
  // Every group is flat from the first step: that warning comes at once, the zero-reward one not yet.
  CHECK(has(first, "all samples got the same reward"));
  CHECK_FALSE(has(first, "every reward has been 0"));
  StepResult second = t.step(task.prompts);
  CHECK(has(second, "every reward has been 0 for 2 steps in a row"));
  CHECK_FALSE(has(second, "all samples got the same reward"));
  CHECK(second.metrics.at("warnings/all_rewards_zero") == 1);
  CHECK(second.metrics.at("warnings/all_groups_zero_variance") == 1);
  CHECK(t.step(task.prompts).warnings.empty());  // the same occurrences: not repeated
}

TEST_CASE("a failing reward rule warns with its message at its first failure, again when its share rises") {
  SilentFailureMonitor monitor;  // rule_failure_fraction 0.1
  auto step = [](int64_t n, int64_t failed, const char* message) {
    StepHealth h;
    h.step = n;
    h.groups = 2;
    h.rule_failures = {{"format", 0, 20, ""}, {"accuracy", failed, 20, message}};
    return h;
  };
  CHECK(monitor.observe(step(1, 0, "")).empty());
  std::vector<std::string> w = monitor.observe(step(2, 1, "rules.lua:3: attempt to index a nil value"));
  REQUIRE(w.size() == 1);  // the first failure, though only 5%
  CHECK(w[0] == "step 2: reward rule 'accuracy' failed on 1 of 20 samples (5%), which score 0 for it: "
                "rules.lua:3: attempt to index a nil value");
  CHECK(monitor.observe(step(3, 1, "x")).empty());  // 5%: below the threshold, already reported
  w = monitor.observe(step(4, 10, "rules.lua:3: attempt to index a nil value"));
  REQUIRE(w.size() == 1);
  CHECK(w[0].find("step 4: reward rule 'accuracy' now fails on 10 of 20 samples (50%)") == 0);
  CHECK(monitor.observe(step(5, 12, "x")).empty());  // the same occurrence
  CHECK(monitor.observe(step(6, 0, "")).empty());    // cleared
  SilentFailureMonitor resumed;
  resumed.restore(monitor.state());
  CHECK(resumed.observe(step(7, 8, "again")).size() == 1);  // rose again, also after a resume
  std::map<std::string, double> m;
  resumed.add_metrics(m);
  CHECK(m.at("warnings/rule_failures") == 3);
}

TEST_CASE("a rule that throws on half the samples: its per-step failure rate, the warning and the cumulative count") {
  TinyTask task;
  GrpoConfig g;
  // Fails on the prompt "bc" (half of every step's samples), scores 1 on "de".
  GrpoTrainer t = task.trainer(R"(return {{name = "picky", rule = function(s)
      if s.prompt == "bc" then error("no answer field") end
      return 1 end}})", g);
  StepResult first = t.step(task.prompts);
  CHECK(first.metrics.at("rewards/picky/failure_rate") == 0.5);
  CHECK(first.metrics.at("rewards/picky/failures") == 4);
  // Each group is flat (all 0 or all 1), so the zero-variance warning comes too; the rule's is one line.
  std::vector<std::string> about_rule;
  for (const std::string& w : first.warnings)
    if (w.find("reward rule") != std::string::npos) about_rule.push_back(w);
  REQUIRE(about_rule.size() == 1);
  CHECK(about_rule[0].find("step 1: reward rule 'picky' failed on 4 of 8 samples (50%)") == 0);
  CHECK(about_rule[0].find("no answer field") != std::string::npos);
  CHECK(first.metrics.at("step") == 1);  // 1-based, as the progress line counts
  StepResult second = t.step(task.prompts);
  CHECK(second.metrics.at("rewards/picky/failure_rate") == 0.5);
  CHECK(second.metrics.at("rewards/picky/failures") == 8);  // cumulative over the run
  for (const std::string& w : second.warnings) CHECK(w.find("reward rule") == std::string::npos);
}
