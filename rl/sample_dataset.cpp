#include "rl/sample_dataset.h"

#include <algorithm>

#include "rewards/scorer_pool.h"

namespace grpo {

std::vector<Completion> sample_prompts(CausalLM& model, const Tokenizer& tokenizer, const std::vector<PromptExample>& prompts,
                                       const SampleConfig& config) {
  RolloutOptions ro;
  ro.sampling = config.sampling;
  ro.stop = config.stop;
  ro.max_batch_rows = config.batch_rows;
  RolloutEngine engine(model, &tokenizer, ro);
  std::vector<PromptRequest> requests;
  for (size_t i = 0; i < prompts.size(); ++i)
    requests.push_back({prompts[i].prompt_ids, config.samples_per_prompt, config.seed + i});
  std::vector<Completion> completions = engine.generate(requests);
  std::stable_sort(completions.begin(), completions.end(), [](const Completion& a, const Completion& b) {
    return a.request_index != b.request_index ? a.request_index < b.request_index : a.sample_index < b.sample_index;
  });
  return completions;
}

rewards::Sample reward_input(const PromptExample& p, const Completion& c) {
  return {p.prompt, c.text, p.record, static_cast<int64_t>(c.completion_ids.size()), to_string(c.finish_reason)};
}

std::vector<nlohmann::json> sample_dataset(CausalLM& model, const Tokenizer& tokenizer,
                                           const std::vector<PromptExample>& prompts, const SampleConfig& config,
                                           const rewards::RuleSet* rules) {
  const std::vector<Completion> completions = sample_prompts(model, tokenizer, prompts, config);

  std::vector<nlohmann::json> out;
  std::vector<rewards::Sample> to_score;
  for (const Completion& c : completions) {
    const PromptExample& p = prompts[static_cast<size_t>(c.request_index)];
    nlohmann::json r = p.record.is_object() ? p.record : nlohmann::json::object();
    r["prompt"] = p.prompt;
    r["completion"] = c.text;
    r["finish_reason"] = to_string(c.finish_reason);
    r["completion_tokens"] = c.completion_ids.size();
    r["prompt_index"] = c.request_index;
    r["sample_index"] = c.sample_index;
    out.push_back(std::move(r));
    if (rules) to_score.push_back(reward_input(p, c));
  }
  if (rules && !out.empty()) {
    rewards::ScorerPool pool(*rules, static_cast<int>(config.reward_threads));
    std::vector<rewards::SampleScore> scores = pool.score(to_score);
    const std::vector<rewards::RuleSpec>& specs = pool.rule_set().rules();
    for (size_t i = 0; i < out.size(); ++i) add_scores(out[i], scores[i], specs);
  }
  return out;
}

void add_scores(nlohmann::json& record, const rewards::SampleScore& score, const std::vector<rewards::RuleSpec>& rules) {
  nlohmann::json values = nlohmann::json::object(), failures = nlohmann::json::object();
  for (size_t k = 0; k < rules.size(); ++k) {
    values[rules[k].name] = score.rules[k].value;
    if (score.rules[k].failed()) failures[rules[k].name] = score.rules[k].message;
  }
  record["rewards"] = std::move(values);
  record["reward"] = score.total;
  if (!failures.empty()) record["reward_failures"] = std::move(failures);
}

std::map<std::string, double> sample_means(const std::vector<nlohmann::json>& samples) {
  std::map<std::string, double> m, failures;  // sums that become means; failure counts that stay counts
  if (samples.empty()) return m;
  for (const nlohmann::json& s : samples) {  // sums first, so a mean of equal values is that value exactly
    m["completion_length"] += s.value("completion_tokens", 0.0);
    if (s.contains("reward")) m["reward"] += s["reward"].get<double>();
    if (s.contains("rewards"))
      for (auto it = s["rewards"].begin(); it != s["rewards"].end(); ++it) {
        m["rewards/" + it.key()] += it.value().get<double>();
        failures.emplace("rewards/" + it.key() + "/failures", 0.0);  // every scored rule has a count, 0 included
      }
    if (s.contains("reward_failures"))
      for (auto it = s["reward_failures"].begin(); it != s["reward_failures"].end(); ++it)
        failures["rewards/" + it.key() + "/failures"] += 1;
  }
  for (auto& [name, sum] : m) sum /= static_cast<double>(samples.size());
  m.insert(failures.begin(), failures.end());
  return m;
}

}  // namespace grpo
