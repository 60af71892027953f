#include "rl/evaluation.h"

#include <fmt/core.h>

#include <stdexcept>

#include "rewards/scorer_pool.h"

namespace grpo {

double pass_at_k(int64_t n, int64_t c, int64_t k) {
  if (k > n) throw std::invalid_argument(fmt::format("pass@{} needs at least {} samples per prompt, have {}", k, k, n));
  if (n - c < k) return 1.0;
  // 1 − Π_{i=n−c+1..n} (1 − k/i), the numerically stable form of 1 − C(n−c, k)/C(n, k).
  double fail = 1.0;
  for (int64_t i = n - c + 1; i <= n; ++i) fail *= 1.0 - static_cast<double>(k) / i;
  return 1.0 - fail;
}

std::map<std::string, double> evaluate(CausalLM& model, const Tokenizer& tokenizer, const rewards::RuleSet& rules,
                                       const std::vector<PromptExample>& prompts, const EvalConfig& config) {
  const std::vector<Completion> completions = sample_prompts(model, tokenizer, prompts, config);
  rewards::ScorerPool pool(rules, static_cast<int>(config.reward_threads));
  std::vector<rewards::Sample> samples;
  for (const Completion& c : completions) samples.push_back(reward_input(prompts[c.request_index], c));
  std::vector<rewards::SampleScore> scores = pool.score(samples);

  const std::vector<rewards::RuleSpec>& specs = pool.rule_set().rules();
  int accuracy_rule = -1;
  for (size_t r = 0; r < specs.size(); ++r)
    if (specs[r].name == "accuracy") accuracy_rule = static_cast<int>(r);
  std::map<std::string, double> m;
  std::vector<int64_t> correct(prompts.size(), 0);
  double length = 0;
  for (size_t i = 0; i < completions.size(); ++i) {
    const rewards::SampleScore& s = scores[i];
    const bool ok = accuracy_rule >= 0 ? s.rules[accuracy_rule].value >= 1.0 : s.total >= 1.0;
    correct[completions[i].request_index] += ok;
    m["reward"] += s.total / completions.size();
    for (size_t r = 0; r < specs.size(); ++r) {
      m["rewards/" + specs[r].name] += s.rules[r].value / completions.size();
      m["rewards/" + specs[r].name + "/failures"] += s.rules[r].failed();
    }
    length += static_cast<double>(completions[i].completion_ids.size()) / completions.size();
  }
  m["completion_length"] = length;
  for (int64_t k : config.pass_k) {
    if (k > config.samples_per_prompt) continue;
    double sum = 0;
    for (int64_t c : correct) sum += pass_at_k(config.samples_per_prompt, c, k);
    m[fmt::format("pass@{}", k)] = sum / prompts.size();
  }
  return m;
}

}  // namespace grpo
