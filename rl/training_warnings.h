#pragma once
// Warnings for the failures that raise no error but stop a GRPO run from learning, the ones users of
// other toolkits find only by staring at curves:
//   - every reward 0 for M steps in a row: the rules never match (a format the policy never produces, a
//     wrong answer field, a template that hides the question);
//   - most completions truncated: max_new_tokens too small, so answers never arrive;
//   - every group zero-variance: all G samples of each prompt scored alike, so every advantage is 0
//     and the step changes nothing (task too easy or too hard, temperature 0, G too small);
//   - a reward rule that fails (throws, exceeds a limit): the sample scores 0 for that rule and the run
//     goes on, so a rule that breaks on half the completions looks like a hard task. Its first failure
//     is reported with the rule's own error message, and again whenever its failure share rises above
//     `rule_failure_fraction` of a step's samples.
// Each is reported once per occurrence (when it begins; again only after it has cleared), and the
// number of occurrences so far goes into the step's metrics as warnings/<name>.
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace grpo {

struct TrainingWarningSettings {
  int64_t zero_reward_steps = 5;      // M: steps in a row with every reward exactly 0
  double truncated_fraction = 0.5;    // "most": above this fraction of completions hit the limit
  double rule_failure_fraction = 0.1; // a rule failing on more than this share of a step's samples
};

// How often one reward rule failed in a step.
struct RuleFailureCount {
  std::string rule;
  int64_t failed = 0, samples = 0;
  std::string first_message;  // the rule's error message for its first failure this step (this rank's)
};

// What one step looked like, for the monitor.
struct StepHealth {
  int64_t step = 0;
  bool all_rewards_zero = false;       // every rule-total of every sample was exactly 0
  double truncated_fraction = 0.0;     // completions stopped by max_new_tokens
  int64_t max_new_tokens = 0;
  int64_t groups = 0, zero_variance_groups = 0;
  std::vector<RuleFailureCount> rule_failures;  // every rule, in rule-set order
};

class SilentFailureMonitor {
 public:
  explicit SilentFailureMonitor(TrainingWarningSettings settings = {}) : settings_(settings) {}

  // Updates the streaks and returns the warnings that begin at this step (usually none).
  std::vector<std::string> observe(const StepHealth& step);
  // warnings/all_rewards_zero, warnings/mostly_truncated, warnings/all_groups_zero_variance,
  // warnings/rule_failures: occurrences so far.
  void add_metrics(std::map<std::string, double>& metrics) const;

  // Streaks and counts, for checkpoints: a resumed run warns exactly when the uninterrupted one would.
  nlohmann::json state() const;
  void restore(const nlohmann::json& state);

 private:
  TrainingWarningSettings settings_;
  int64_t zero_reward_streak_ = 0;
  bool truncated_active_ = false, zero_variance_active_ = false;
  int64_t zero_reward_count_ = 0, truncated_count_ = 0, zero_variance_count_ = 0, rule_failure_count_ = 0;
  // Per rule: whether its first failure has been reported, and whether its share is above the threshold.
  std::map<std::string, bool> rule_failed_before_, rule_failing_often_;
};

}  // namespace grpo
