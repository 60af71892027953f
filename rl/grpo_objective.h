#pragma once
// The mathematics of one GRPO step, as small functions on tensors, in the order a step uses them:
//
//   rewards ─► group_advantages ─► per_token_policy_loss (ratio, clipped surrogate, KL, entropy)
//           ─► aggregate_loss (with a LossNormalizer counted once over the whole minibatch)
//
// grpo_loss() chains the last two and returns the scalar to backpropagate with its statistics.
// Each variant is an option naming its source (DeepSeekMath, DAPO, Dr. GRPO, GSPO, verl, TRL); the
// formulas, defaults and sources are collected in docs/grpo-objective.md.
//
// Shapes: B sequences (completions), T completion positions. Every [B, T] input is aligned: entry
// [i, t] belongs to token t of completion i, and mask[i, t] = 1 marks a token that counts (a sampled
// completion token up to and including EOS, not padding, not a masked-out truncated sample).
#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace grpo {

// ---------------------------------------------------------------------------------------------
// 1. Group-relative advantages (DeepSeekMath §4.1.2, outcome supervision)
// ---------------------------------------------------------------------------------------------

enum class AdvantageScaling {
  Group,  // (r − mean_g) / (std_g + eps): GRPO, verl norm_adv_by_std_in_grpo=True, TRL scale_rewards="group"
  Batch,  // (r − mean_g) / (std_batch + eps): TRL scale_rewards="batch" (no per-question difficulty weighting)
  None,   // r − mean_g: Dr. GRPO, verl norm_adv_by_std_in_grpo=False, TRL scale_rewards="none"
};

enum class StdEstimator {
  Unbiased,    // Σ(r − mean)² / (n − 1): torch.std, what verl and TRL use; the default
  Population,  // Σ(r − mean)² / n: numpy's np.std (verl's DAPO recipe uses it only to filter groups)
};

struct AdvantageOptions {
  AdvantageScaling scaling = AdvantageScaling::Group;
  StdEstimator std_estimator = StdEstimator::Unbiased;
  double eps = 1e-6;  // verl's epsilon; TRL uses 1e-4, Dr. GRPO's code 1e-8
};

// The statistics advantages are built from (the trainer's reward metrics use the same ones).
double mean_of(const std::vector<double>& values);  // 0 for no values
// 0 for fewer than two values (the unbiased estimator is undefined there, and a single sample has no
// spread to normalise).
double standard_deviation(const std::vector<double>& values, double mean, StdEstimator estimator);
// Every value exactly equal (true for zero or one value): a group with no learning signal.
bool all_equal(const std::vector<double>& values);

struct GroupSummary {
  int64_t group_id = 0;
  int64_t size = 0;
  double mean = 0;
  double std = 0;              // with the chosen estimator; 0 for a group of one
  bool zero_variance = false;  // every reward equal (a group of one included): no learning signal
};

struct GroupAdvantages {
  torch::Tensor advantages;         // [N] float64, exactly 0 in zero-variance groups
  std::vector<GroupSummary> groups; // in order of first appearance in group_ids
  // Ids of the groups whose rewards are all equal, in order of first appearance: the groups DAPO's
  // dynamic sampling drops and refills (all correct or all wrong gives no gradient).
  std::vector<int64_t> zero_variance_groups() const;
};

// rewards: [N] (any floating dtype, computed in float64); group_ids: [N] integer, equal ids = samples of
// one prompt, in any order. A group of one, and any group whose rewards are all exactly equal, gets
// advantage 0 (not a rounding residue of r − mean). Throws std::invalid_argument on mismatched shapes,
// a non-integer group_ids, a negative eps, or a non-finite reward (naming its index).
GroupAdvantages group_advantages(const torch::Tensor& rewards, const torch::Tensor& group_ids,
                                 const AdvantageOptions& options = {});

// ---------------------------------------------------------------------------------------------
// 2. Per-token policy loss: clipped surrogate (PPO / GRPO eq. 3), KL to the reference, entropy bonus
// ---------------------------------------------------------------------------------------------

enum class RatioLevel {
  Token,     // ρ_{i,t} = π_θ/π_old per token: DeepSeekMath, verl, TRL default
  Sequence,  // GSPO: s_i = exp(mean_t log(π_θ/π_old)), one ratio per completion, in verl's token form
};

enum class KlEstimator {
  K1,  // log π_θ − log π_ref (verl "k1"/"kl")
  K2,  // ½ (log π_θ − log π_ref)² (verl "k2"/"mse")
  K3,  // π_ref/π_θ − log(π_ref/π_θ) − 1, GRPO eq. 4 (verl "k3"/"low_var_kl", TRL); the default
};

struct PolicyLossOptions {
  double clip_low = 0.2;   // ε_low: ratio floor 1 − ε_low for A < 0 (PPO's ε; verl/TRL default 0.2)
  double clip_high = 0.2;  // ε_high: ratio ceiling 1 + ε_high for A > 0 (DAPO clip-higher: 0.28)
  // Dual clip (Ye et al. 2020, verl clip_ratio_c): for A < 0 the loss is bounded by −c·A, so a token
  // whose ratio exploded cannot dominate. 0 = off; otherwise must be > 1 (verl's default is 3.0).
  double dual_clip = 0;
  RatioLevel ratio_level = RatioLevel::Token;
  double kl_coef = 0;  // β; 0 = no KL term, and no reference log-probs needed
  KlEstimator kl_estimator = KlEstimator::K3;
  double entropy_coef = 0;  // adds −coef·H per token (verl entropy_coeff; 0 = off)
};

struct PolicyLossInputs {
  torch::Tensor logp{};        // [B, T] log π_θ of the sampled tokens, current policy (carries the graph)
  torch::Tensor old_logp{};    // [B, T] log π_old at rollout time (the behaviour policy); treated as constant
  torch::Tensor advantages{};  // [B] one advantage per completion, or [B, T] one per token (on-policy
                               // distillation's dense teacher signal); treated as constant
  torch::Tensor mask{};        // [B, T] bool or 0/1 numbers
  torch::Tensor ref_logp{};    // [B, T] log π_ref; required only when kl_coef != 0
  torch::Tensor entropy{};     // [B, T] policy entropy per position; required when entropy_coef != 0,
                               // otherwise optional (reported in the statistics when given)
};

// The per-token terms; each is [B, T] in logp's dtype, zero where mask = 0.
struct PerTokenLoss {
  torch::Tensor policy;   // −min(ρ·A, clip(ρ, 1−ε_low, 1+ε_high)·A), dual-clipped when enabled
  torch::Tensor kl;       // KL estimator to the reference; undefined when kl_coef == 0
  torch::Tensor entropy;  // entropy (positive); undefined unless entropy_coef != 0
  torch::Tensor total;    // policy + β·kl − entropy_coef·entropy
  // Intermediates for the statistics (no graph): the ratio used (s_i broadcast for GSPO) and
  // where each clip was active.
  torch::Tensor ratio, clipped_low, clipped_high, dual_clipped;
};

// Throws std::invalid_argument naming the input when a shape disagrees or a required input is missing,
// or when an option is out of range (ε < 0, 0 < dual_clip ≤ 1, negative coefficients).
PerTokenLoss per_token_policy_loss(const PolicyLossInputs& inputs, const PolicyLossOptions& options);

// ---------------------------------------------------------------------------------------------
// 3. Aggregation of a per-token loss into the scalar to minimise (verl agg_loss, TRL loss_type)
// ---------------------------------------------------------------------------------------------

enum class LossAggregation {
  TokenMean,            // Σ_{i,t} l / Σ_{i,t} m: DAPO's token-level loss, verl default, TRL "dapo"
  SeqMeanTokenMean,     // mean_i (Σ_t l / Σ_t m): original GRPO (DeepSeekMath eq. 3), TRL "grpo"
  SeqMeanTokenSum,      // mean_i Σ_t l (verl "seq-mean-token-sum")
  SeqMeanTokenSumNorm,  // mean_i (Σ_t l / L), L a constant: Dr. GRPO, TRL "dr_grpo"
};

// The denominators of every mode, counted ONCE over the whole minibatch (and, with data parallelism,
// summed over ranks) and handed to each micro-batch, so that each micro-batch returns exactly its share
// of the minibatch loss: summing micro-batch gradients gives the gradient of the whole minibatch.
struct LossNormalizer {
  double tokens = 0;      // Σ mask over the minibatch
  double sequences = 0;   // completions with at least one valid token (verl's convention)
  double max_length = 0;  // Dr. GRPO's constant L (the configured maximum completion length)

  // Counts of one mask [B, T]; micro-batch counts add up with +=.
  static LossNormalizer count(const torch::Tensor& mask, double max_length = 0);
  LossNormalizer& operator+=(const LossNormalizer& other);
};

// loss: [B, T] per-token loss of a micro-batch (or the whole minibatch); mask: [B, T]. Returns a scalar
// in loss's dtype. A minibatch with no valid token gives 0 (denominators are at least 1). Throws
// std::invalid_argument on a shape mismatch, or SeqMeanTokenSumNorm with max_length <= 0.
torch::Tensor aggregate_loss(const torch::Tensor& loss, const torch::Tensor& mask, LossAggregation mode,
                             const LossNormalizer& normalizer);

// ---------------------------------------------------------------------------------------------
// 4. The loss of one micro-batch, with statistics
// ---------------------------------------------------------------------------------------------

// Sums and counts over the valid tokens seen, so the statistics of micro-batches add up (+=) to those of
// the minibatch exactly, and ranks can all-reduce them the same way. Means are computed on request.
struct LossStats {
  double tokens = 0;         // valid tokens
  double clipped_low = 0;    // tokens with A < 0 and ρ < 1 − ε_low (zero gradient)
  double clipped_high = 0;   // tokens with A > 0 and ρ > 1 + ε_high (zero gradient)
  double dual_clipped = 0;   // tokens with A < 0 and ρ > c (zero gradient)
  double ratio_sum = 0, ratio_min = 0, ratio_max = 0;  // min/max meaningful when tokens > 0
  double old_minus_new_sum = 0;  // Σ (log π_old − log π_θ): verl's ppo_kl
  double ref_kl_sum = 0;         // Σ KL-estimator values (when kl_coef != 0)
  double entropy_sum = 0;        // Σ entropy (when entropy given)
  bool has_ref_kl = false, has_entropy = false;
  // This micro-batch's shares of the aggregated terms; they add up to the minibatch's loss.
  double policy_loss = 0, kl_loss = 0, entropy_loss = 0;

  LossStats& operator+=(const LossStats& other);
  // Named metrics (names as TRL/verl log them; mapping in docs/grpo-objective.md): pg_loss, kl_loss,
  // entropy_loss, clip_ratio/low_mean, clip_ratio/high_mean, clip_ratio/region_mean, clip_ratio/dual_mean,
  // ratio/mean, ratio/min, ratio/max, approx_kl, and kl / entropy when present.
  std::vector<std::pair<std::string, double>> metrics() const;
};

struct ObjectiveOptions {
  PolicyLossOptions policy;
  LossAggregation aggregation = LossAggregation::TokenMean;
};

struct MicroBatchLoss {
  torch::Tensor loss;  // scalar: this micro-batch's share of the minibatch loss; call backward() on it
  LossStats stats;
};

// per_token_policy_loss + aggregate_loss + statistics. `normalizer` is counted over the whole minibatch.
MicroBatchLoss grpo_loss(const PolicyLossInputs& inputs, const ObjectiveOptions& options,
                         const LossNormalizer& normalizer);

}  // namespace grpo
