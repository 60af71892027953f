#pragma once
// Sampling a dataset: n completions per prompt, optionally scored by reward rules, laid out as records
// that keep the dataset's fields. This is `grpo.sample{}` (a samples JSONL for inspection, for filtering
// into SFT data as in rejection sampling, or for `grpo rewards`); `grpo.eval{}` reduces the same kind of
// scored samples to pass@k.
#include <nlohmann/json.hpp>

#include <map>
#include <string>
#include <vector>

#include "policy/causal_lm.h"
#include "policy/tokenizer/tokenizer.h"
#include "rewards/rule_set.h"
#include "rl/prompt_example.h"
#include "rollout/rollout_engine.h"

namespace grpo {

struct SampleConfig {
  int64_t samples_per_prompt = 1;
  SamplingParams sampling;
  StopConditions stop;
  int64_t batch_rows = 64;
  uint64_t seed = 12345;  // prompt i uses seed + i, as grpo.eval and `grpo sample` do
  int64_t reward_threads = 2;
};

// n completions of every prompt, sorted by prompt, then sample. Prompt i is seeded with seed + i, so its
// samples do not depend on which other prompts share its batch.
std::vector<Completion> sample_prompts(CausalLM& model, const Tokenizer& tokenizer, const std::vector<PromptExample>& prompts,
                                       const SampleConfig& config);

// What a reward rule sees of completion `c` of prompt `p`.
rewards::Sample reward_input(const PromptExample& p, const Completion& c);

// One record per completion, prompt by prompt and sample by sample: the dataset record's fields, then
//   prompt, completion, finish_reason ("stop"/"length"), completion_tokens, prompt_index, sample_index
// (these win over record fields of the same name) and, with rules, "rewards": {rule: value}, "reward":
// the weighted total, and "reward_failures": {rule: message} for rules that failed on it.
// `rules` may be null (no scoring). Throws what the rollout throws for a prompt that does not fit.
std::vector<nlohmann::json> sample_dataset(CausalLM& model, const Tokenizer& tokenizer,
                                           const std::vector<PromptExample>& prompts, const SampleConfig& config,
                                           const rewards::RuleSet* rules);

// Writes a sample's scores into its record as sample_dataset lays them out: "rewards": {rule: value},
// "reward": the weighted total, and "reward_failures": {rule: message} when a rule failed on it.
void add_scores(nlohmann::json& record, const rewards::SampleScore& score, const std::vector<rewards::RuleSpec>& rules);

// Means over sample records: "reward", "rewards/<rule>" (when scored) and "completion_length"; and
// "rewards/<rule>/failures", the number of records on which the rule failed.
std::map<std::string, double> sample_means(const std::vector<nlohmann::json>& samples);

}  // namespace grpo
