#pragma once
// GrpoTrainer: one GRPO step, as DeepSeekMath §4.1 and DeepSeek-R1 §2.2 define it.
//
//   prompts ─► rollout: G samples each ─► rewards (Lua rules) ─► group advantages
//           ─► [DAPO dynamic sampling: drop zero-variance groups, sample more prompts]
//           ─► reference log-probs (β > 0) ─► μ passes over minibatches: clipped surrogate + KL,
//              micro-batch gradient accumulation, grad clipping, AdamW ─► metrics
//
// The mathematics lives in grpo_objective.h; this file orders it and feeds it data.
#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "policy/causal_lm.h"
#include "policy/tokenizer/tokenizer.h"
#include "reference/reference_model.h"
#include "rewards/scorer_pool.h"
#include "rl/grpo_objective.h"
#include "rl/lr_schedule.h"
#include "rl/optimizer.h"
#include "rl/policy_optimizer.h"
#include "rl/overlong_penalty.h"
#include "rl/prompt_example.h"
#include "rl/training_warnings.h"
#include "rollout/rollout_engine.h"

namespace grpo {

class Distributed;  // rl/distributed/distributed.h
struct RankShare;  // rl/data_parallel.h
struct SequenceBatch;  // rl/sequence_batch.h

struct GrpoConfig {
  int64_t group_size = 8;  // G samples per prompt
  uint64_t seed = 0;
  // Rollout (temperature also scales the training log-probs, as in verl and TRL).
  SamplingParams sampling;
  StopConditions stop;
  int64_t rollout_batch_rows = 64;
  // Objective: advantages, clipping, KL (β = policy.kl_coef), aggregation.
  AdvantageOptions advantages;
  // DAPO clip-higher (ε_high 0.28 above ε_low 0.2), as grpo.train has always defaulted to; the loss
  // function's own default (PolicyLossOptions) stays PPO's symmetric 0.2.
  ObjectiveOptions objective = [] {
    ObjectiveOptions o;
    o.policy.clip_high = 0.28;
    return o;
  }();
  // Update: μ passes over the step's samples, each split into minibatches (one optimizer step each),
  // each minibatch processed in micro-batches of this many sequences with gradient accumulation.
  int64_t epochs = 1;
  int64_t minibatches = 1;
  int64_t micro_batch_size = 32;
  // No weight decay in RL fine-tuning (verl's and TRL's GRPO default), unlike AdamWSettings' 0.01.
  AdamWSettings adamw{/*lr=*/1e-6, /*beta1=*/0.9, /*beta2=*/0.999, /*eps=*/1e-8, /*weight_decay=*/0.0,
                      /*decay_vectors=*/false};
  LrSchedule lr;
  double max_grad_norm = 1.0;
  int64_t logprob_chunk = 256;
  // Overlong samples (finish reason "length") left out of the loss (DAPO overlong filtering).
  bool mask_truncated = false;
  // DAPO soft overlong punishment (overlong_penalty.h): completions longer than max_new_tokens − buffer
  // tokens lose up to `overlong_penalty` reward, linearly in the extra length. Buffer 0 = off.
  int64_t overlong_buffer = 0;
  double overlong_penalty = 1.0;
  // DAPO dynamic sampling: groups whose rewards are all equal carry no signal; drop them and sample more
  // prompts until the step has its number of informative groups, at most this many extra rounds.
  bool drop_zero_variance_groups = false;
  int64_t max_refill_rounds = 3;
  // Reference: reset to the current policy every N steps (0 = never; DeepSeek-R1-Zero: 400).
  int64_t reference_reset_every = 0;
  // On-policy distillation (GKD with λ = 1, the Thinking Machines recipe; docs/distillation.md): the
  // reference slot holds a teacher, and the advantage of completion token t becomes
  //   A_{i,t} = reward_coef · A_i − distill_coef · (log π_old(y_t) − log π_T(y_t)),
  // the sampled reverse KL to the teacher as a dense per-token penalty (discount 0). 0 = off: plain GRPO,
  // computed exactly as without these fields. distill_coef != 0 needs a reference model (the teacher).
  double distill_coef = 0;
  double reward_coef = 1;
  // MoE: replay rollout routing in the update; update router biases by γ after each step (0 = frozen).
  bool routing_replay = true;
  double router_bias_update = 0.0;
  // Non-finite losses or gradients skip the step; this many in a row stop training.
  int64_t max_consecutive_skips = 5;
  int64_t reward_threads = 2;
  // Data parallel (rl/data_parallel.h): this rank's process group, or null for one process. Every rank
  // calls step() with the same prompts and samples its own share of them.
  Distributed* distributed = nullptr;
  TrainingWarningSettings warnings;
};

// Metrics of one step, by name (TRL/verl names; see docs/training.md).
using StepMetrics = std::map<std::string, double>;

// A scored sample, kept for the samples log: with its dataset record and every rule's value, so the log
// can be rescored (`grpo rewards --in samples.jsonl`) like grpo.sample's output.
struct ScoredSample {
  int64_t prompt_index = 0;
  std::string prompt, completion;
  nlohmann::json record;  // the dataset record the prompt came from
  double reward = 0, advantage = 0;
  std::vector<std::pair<std::string, double>> rule_values;
  std::vector<std::pair<std::string, std::string>> rule_failures;  // rule name, error message
  std::string finish_reason;
  int64_t completion_tokens = 0;
};

struct StepResult {
  StepMetrics metrics;
  std::vector<ScoredSample> samples;
  bool skipped = false;  // non-finite loss or gradient: no update applied
  std::vector<std::string> warnings;  // silent failures beginning at this step (training_warnings.h)
};

class GrpoTrainer {
 public:
  // next_prompts(n) supplies n more prompts when dynamic sampling refills a step; may be empty.
  using PromptSource = std::function<std::vector<PromptExample>(int64_t n)>;

  GrpoTrainer(CausalLM policy, Tokenizer tokenizer, rewards::RuleSet rules, GrpoConfig config,
              std::optional<ReferenceModel> reference = std::nullopt);

  // One GRPO step on these prompts. Throws std::runtime_error after max_consecutive_skips non-finite
  // steps in a row, saying what was non-finite.
  StepResult step(const std::vector<PromptExample>& prompts, const PromptSource& more_prompts = {});

  int64_t steps_done() const { return step_; }
  CausalLM& policy() { return policy_; }
  PolicyOptimizer& optimizer() { return *optimizer_; }
  const GrpoConfig& config() const { return config_; }
  // The reference model (present when kl_coef != 0); checkpoints hold it once it has been reset, since
  // it then no longer equals the initial policy that a resumed trainer starts from.
  ReferenceModel* reference() { return reference_ ? &*reference_ : nullptr; }
  bool reference_was_reset() const;

  // Everything besides weights and optimizer moments that the next steps depend on: the step counter
  // (it seeds sampling and shuffling), the optimizer-step counter (the LR schedule position), the skip
  // streak, cumulative reward-rule failures and the warning streaks. A trainer built as the original
  // one was, with the checkpoint's weights and optimizer state loaded and these counters restored,
  // continues exactly as the original would have (see train_checkpoint.h).
  nlohmann::json counters() const;
  // Throws std::runtime_error when `counters` lacks a field or belongs to another rule set.
  void restore_counters(const nlohmann::json& counters);

 private:
  struct ScoredGroup;
  struct SampledGroups;
  OverlongPenalty overlong_penalty() const;
  // The phases of step(), in order.
  SampledGroups sample_groups(const std::vector<PromptExample>& prompts, const RankShare& share,
                              const PromptSource& more_prompts);
  std::vector<std::string> add_reward_metrics(const SampledGroups& sampled, StepMetrics& m);  // returns new warnings
  std::vector<double> advantages_of(const std::vector<const ScoredGroup*>& kept, std::vector<const Completion*>& completions,
                                    StepMetrics& m) const;
  std::vector<ScoredSample> sample_log(const SampledGroups& sampled, const std::vector<const ScoredGroup*>& kept,
                                       const std::vector<double>& advantages, int64_t first_prompt) const;
  void balance_experts(StepMetrics& m);
  // 4. The policy update (returns the number of skipped optimizer steps), in its parts: one optimizer
  // step per minibatch (normalizer over all ranks, micro-batch losses, gradients summed over ranks,
  // clip and step), and the update's metrics reduced over the ranks.
  struct UpdateTotals;
  struct MinibatchNormalizer;
  double policy_update(const std::vector<const Completion*>& completions, const std::vector<double>& advantages,
                       StepMetrics& metrics);
  MinibatchNormalizer normalizer_of(const SequenceBatch& minibatch) const;
  // On-policy distillation: per-token advantages from the teacher's log-probs (distill_coef != 0).
  void add_teacher_advantages(SequenceBatch& all, StepMetrics& m) const;
  void minibatch_step(const SequenceBatch& minibatch, bool first_pass, UpdateTotals& totals);
  // Backpropagates one micro-batch's share of the minibatch loss; false (and no backward) when it is
  // not finite.
  bool micro_batch_backward(SequenceBatch micro, const MinibatchNormalizer& normalizer, bool first_pass,
                            UpdateTotals& totals);
  void add_update_metrics(UpdateTotals& totals, StepMetrics& m) const;
  LogprobOptions logprob_options() const;
  // MoE routing replay is on: the rollout records each token's experts and the update reuses them.
  bool replays_routing() const;

  CausalLM policy_;
  Tokenizer tokenizer_;
  GrpoConfig config_;
  std::unique_ptr<rewards::ScorerPool> scorer_;
  std::optional<ReferenceModel> reference_;
  std::unique_ptr<PolicyOptimizer> optimizer_;
  int64_t step_ = 0;
  int64_t optimizer_steps_ = 0;
  int64_t consecutive_skips_ = 0;
  std::vector<int64_t> failures_before_;  // reward-rule failures counted before a resume, per rule
  SilentFailureMonitor monitor_;
};

}  // namespace grpo
