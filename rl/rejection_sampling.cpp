#include "rl/rejection_sampling.h"

#include <fmt/core.h>
#include <fmt/format.h>

#include <stdexcept>
#include <unordered_map>
#include <unordered_set>

namespace grpo {

using nlohmann::json;

namespace {

// The rules a sample was scored with, for the error of a rule it lacks.
std::string rule_names(const json& sample) {
  std::vector<std::string> names;
  if (sample.contains("rewards") && sample["rewards"].is_object())
    for (auto it = sample["rewards"].begin(); it != sample["rewards"].end(); ++it) names.push_back("\"" + it.key() + "\"");
  if (names.empty()) return "the samples were not scored (give rules)";
  return fmt::format("the samples have {}", fmt::join(names, ", "));
}

// The value `rule` has on `sample`: its rewards entry, or the weighted total for "reward".
double rule_value(const json& sample, const std::string& rule, size_t record) {
  const json* rewards = sample.contains("rewards") && sample["rewards"].is_object() ? &sample["rewards"] : nullptr;
  if (rewards && rewards->contains(rule) && (*rewards)[rule].is_number()) return (*rewards)[rule].get<double>();
  if (rule == "reward" && sample.contains("reward") && sample["reward"].is_number()) return sample["reward"].get<double>();
  throw std::invalid_argument(fmt::format("rejection sampling: keep names rule \"{}\", which sample {} does not have ({})",
                                          rule, record + 1, rule_names(sample)));
}

bool meets_minimums(const json& sample, const RejectionCriteria& criteria, size_t record) {
  bool ok = true;
  for (const auto& [rule, minimum] : criteria.min_values)  // every rule is looked up, so a missing one always throws
    if (rule_value(sample, rule, record) < minimum) ok = false;
  return ok;
}

}  // namespace

double RejectionResult::kept_per_prompt() const {
  return prompts.empty() ? 0.0 : static_cast<double>(kept.size()) / static_cast<double>(prompts.size());
}

RejectionResult rejection_sample(const std::vector<json>& samples, const RejectionCriteria& criteria) {
  if (criteria.max_per_prompt < 0)
    throw std::invalid_argument(fmt::format("rejection sampling: max_per_prompt must be >= 0, got {}", criteria.max_per_prompt));
  RejectionResult result;
  std::unordered_map<int64_t, size_t> slot;  // prompt_index -> position in result.prompts
  std::unordered_map<int64_t, std::unordered_set<std::string>> kept_texts;
  for (size_t i = 0; i < samples.size(); ++i) {
    const json& s = samples[i];
    if (!s.is_object() || !s.contains("prompt_index") || !s["prompt_index"].is_number_integer())
      throw std::invalid_argument(fmt::format("rejection sampling: sample {} has no integer prompt_index", i + 1));
    if (!s.contains("completion") || !s["completion"].is_string())
      throw std::invalid_argument(fmt::format("rejection sampling: sample {} has no string completion", i + 1));
    const int64_t prompt = s["prompt_index"].get<int64_t>();
    auto [it, added] = slot.emplace(prompt, result.prompts.size());
    if (added) result.prompts.push_back({prompt, 0, 0, 0, 0, 0});
    PromptRejectionCounts& c = result.prompts[it->second];
    ++c.seen;
    if (!meets_minimums(s, criteria, i)) continue;
    if (criteria.predicate && !criteria.predicate(s)) continue;
    ++c.passed;
    const std::string& text = s["completion"].get_ref<const std::string&>();
    if (criteria.dedupe && kept_texts[prompt].count(text)) {
      ++c.duplicates;
      continue;
    }
    if (criteria.max_per_prompt > 0 && c.kept >= criteria.max_per_prompt) {
      ++c.capped;
      continue;
    }
    if (criteria.dedupe) kept_texts[prompt].insert(text);
    ++c.kept;
    result.kept.push_back(s);
  }
  for (const PromptRejectionCounts& c : result.prompts) {
    result.seen += c.seen;
    result.passed += c.passed;
    result.duplicates += c.duplicates;
    result.capped += c.capped;
    result.prompts_with_kept += c.kept > 0;
  }
  return result;
}

json to_json(const PromptRejectionCounts& c) {
  return {{"prompt_index", c.prompt_index}, {"seen", c.seen},     {"passed", c.passed},
          {"duplicates", c.duplicates},     {"capped", c.capped}, {"kept", c.kept}};
}

}  // namespace grpo
