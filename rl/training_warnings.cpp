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
  return warnings;
}

void SilentFailureMonitor::add_metrics(std::map<std::string, double>& m) const {
  m["warnings/all_rewards_zero"] = static_cast<double>(zero_reward_count_);
  m["warnings/mostly_truncated"] = static_cast<double>(truncated_count_);
  m["warnings/all_groups_zero_variance"] = static_cast<double>(zero_variance_count_);
}

nlohmann::json SilentFailureMonitor::state() const {
  return {{"zero_reward_streak", zero_reward_streak_}, {"truncated_active", truncated_active_},
          {"zero_variance_active", zero_variance_active_}, {"zero_reward_count", zero_reward_count_},
          {"truncated_count", truncated_count_}, {"zero_variance_count", zero_variance_count_}};
}

void SilentFailureMonitor::restore(const nlohmann::json& s) {
  zero_reward_streak_ = s.at("zero_reward_streak").get<int64_t>();
  truncated_active_ = s.at("truncated_active").get<bool>();
  zero_variance_active_ = s.at("zero_variance_active").get<bool>();
  zero_reward_count_ = s.at("zero_reward_count").get<int64_t>();
  truncated_count_ = s.at("truncated_count").get<int64_t>();
  zero_variance_count_ = s.at("zero_variance_count").get<int64_t>();
}

}  // namespace grpo
