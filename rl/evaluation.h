#pragma once
// Evaluation of a policy on a dataset: n samples per prompt, scored by the reward rules.
//   pass@k = mean over prompts of 1 − C(n − c, k) / C(n, k)   (Chen et al. 2021, unbiased; c = samples
//            whose "accuracy" rule is 1, or whose total reward is >= 1 when no rule is named so)
//   rewards/<rule> = mean rule value over all samples (the name training logs it under)
#include <map>
#include <string>
#include <vector>

#include "policy/causal_lm.h"
#include "policy/tokenizer/tokenizer.h"
#include "rewards/rule_set.h"
#include "rl/prompt_example.h"
#include "rl/sample_dataset.h"

namespace grpo {

// What to sample (sample_dataset.h: prompt i is seeded with seed + i) and which pass@k to report.
struct EvalConfig : SampleConfig {
  EvalConfig() { samples_per_prompt = 8; }
  std::vector<int64_t> pass_k = {1, 8};
};

// Unbiased pass@k from n samples with c correct (k <= n).
double pass_at_k(int64_t n, int64_t c, int64_t k);

// Metrics by name: "pass@1", "pass@8", "reward", "rewards/<rule>", "rewards/<rule>/failures" (samples on
// which the rule failed and scored 0), "completion_length".
std::map<std::string, double> evaluate(CausalLM& model, const Tokenizer& tokenizer, const rewards::RuleSet& rules,
                                       const std::vector<PromptExample>& prompts, const EvalConfig& config);

}  // namespace grpo
