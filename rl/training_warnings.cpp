#include "rl/training_warnings.h"

#include <fmt/core.h>

namespace grpo {

std::vector<std::string> SilentFailureMonitor::observe(const StepHealth& s) {
  std::vector<std::string> warnings;
  zero_reward_streak_ = s.all_rewards_zero ? zero_reward_streak_ + 1 : 0;
  if (settings_.zero_reward_steps > 0 && zero_reward_streak_ == settings_.zero_reward_steps) {
    ++zero_reward_count_;
    warnings.push_back(fmt::format(
        "step {}: every reward has been 0 for {} steps in a row; check that the reward rules match what the policy "
        "writes (samples.jsonl shows completions with their rewards), the prompt template and the record fields",
        s.step, zero_reward_streak_));
  }

  const bool truncated = s.truncated_fraction > settings_.truncated_fraction;
  if (truncated && !truncated_active_) {
    ++truncated_count_;
    warnings.push_back(fmt::format(
        "step {}: {:.0f}% of completions stopped at max_new_tokens ({}) before finishing; raise max_new_tokens, or "
        "shape it with overlong_buffer (DAPO) or mask_truncated",
        s.step, 100 * s.truncated_fraction, s.max_new_tokens));
  }
  truncated_active_ = truncated;

  const bool flat = s.groups > 0 && s.zero_variance_groups == s.groups;
  if (flat && !zero_variance_active_) {
    ++zero_variance_count_;
    warnings.push_back(fmt::format(
        "step {}: in every group ({}) all samples got the same reward, so every advantage is 0 and the step learns "
        "nothing; a larger group_size, a higher temperature or dynamic_sampling give groups that differ",
        s.step, s.groups));
  }
  zero_variance_active_ = flat;

  for (const RuleFailureCount& r : s.rule_failures) {
    const double share = r.samples > 0 ? static_cast<double>(r.failed) / static_cast<double>(r.samples) : 0.0;
    const bool often = share > settings_.rule_failure_fraction;
    const std::string message = r.first_message.empty() ? "(its message was logged on another rank)" : r.first_message;
    if (r.failed > 0 && !rule_failed_before_[r.rule]) {
      ++rule_failure_count_;
      warnings.push_back(fmt::format("step {}: reward rule '{}' failed on {} of {} samples ({:.0f}%), which score 0 for it: {}",
                                     s.step, r.rule, r.failed, r.samples, 100 * share, message));
    } else if (often && !rule_failing_often_[r.rule]) {
      ++rule_failure_count_;
      warnings.push_back(fmt::format("step {}: reward rule '{}' now fails on {} of {} samples ({:.0f}%): {}", s.step, r.rule,
                                     r.failed, r.samples, 100 * share, message));
    }
    rule_failed_before_[r.rule] = rule_failed_before_[r.rule] || r.failed > 0;
    rule_failing_often_[r.rule] = often;
  }
  return warnings;
}

void SilentFailureMonitor::add_metrics(std::map<std::string, double>& m) const {
  m["warnings/all_rewards_zero"] = static_cast<double>(zero_reward_count_);
  m["warnings/mostly_truncated"] = static_cast<double>(truncated_count_);
  m["warnings/all_groups_zero_variance"] = static_cast<double>(zero_variance_count_);
  m["warnings/rule_failures"] = static_cast<double>(rule_failure_count_);
}

nlohmann::json SilentFailureMonitor::state() const {
  return {{"zero_reward_streak", zero_reward_streak_}, {"truncated_active", truncated_active_},
          {"zero_variance_active", zero_variance_active_}, {"zero_reward_count", zero_reward_count_},
          {"truncated_count", truncated_count_}, {"zero_variance_count", zero_variance_count_},
          {"rule_failure_count", rule_failure_count_}, {"rule_failed_before", rule_failed_before_},
          {"rule_failing_often", rule_failing_often_}};
}

void SilentFailureMonitor::restore(const nlohmann::json& s) {
  zero_reward_streak_ = s.at("zero_reward_streak").get<int64_t>();
  truncated_active_ = s.at("truncated_active").get<bool>();
  zero_variance_active_ = s.at("zero_variance_active").get<bool>();
  zero_reward_count_ = s.at("zero_reward_count").get<int64_t>();
  truncated_count_ = s.at("truncated_count").get<int64_t>();
  zero_variance_count_ = s.at("zero_variance_count").get<int64_t>();
  // Checkpoints written before rule failures were monitored lack these: start them from nothing.
  rule_failure_count_ = s.value("rule_failure_count", int64_t{0});
  rule_failed_before_ = s.value("rule_failed_before", std::map<std::string, bool>{});
  rule_failing_often_ = s.value("rule_failing_often", std::map<std::string, bool>{});
}

}  // namespace grpo
