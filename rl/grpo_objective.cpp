#include "rl/grpo_objective.h"

#include <cmath>
#include <limits>
#include <sstream>
#include <stdexcept>
#include <unordered_map>

namespace grpo {

namespace {

using torch::Tensor;

std::string shape_of(const Tensor& t) {
  if (!t.defined()) return "undefined";
  std::ostringstream out;
  out << t.sizes();
  return out.str();
}

[[noreturn]] void fail(const std::string& where, const std::string& what) {
  throw std::invalid_argument(where + ": " + what);
}

void require_same_shape(const char* where, const char* name, const Tensor& t, const char* like_name, const Tensor& like) {
  if (!t.defined()) fail(where, std::string(name) + " is required but undefined");
  if (t.sizes() != like.sizes())
    fail(where, std::string(name) + " must have shape " + shape_of(like) + " like " + like_name + ", got " + shape_of(t));
}

// Bounds from verl core_algos.py: exp of a log-ratio beyond ±20 would overflow float32 long before it
// means anything, and k3 beyond 10 is an outlier that would swamp the batch.
constexpr double kLogRatioBound = 20.0;
constexpr double kSequenceLogRatioMax = 10.0;  // GSPO (verl compute_policy_loss_gspo)
constexpr double kK3Bound = 10.0;

}  // namespace

// =============================================================================================
// 1. Group-relative advantages
// =============================================================================================
//
// DeepSeekMath §4.1.2:  Â_i = (r_i − mean(r_g)) / std(r_g)   for every token of completion i,
// with verl's eps in the denominator. Dr. GRPO (arXiv 2503.20783) drops the division; TRL's
// scale_rewards="batch" divides by the std of the whole batch instead of the group's.

std::vector<int64_t> GroupAdvantages::zero_variance_groups() const {
  std::vector<int64_t> ids;
  for (const GroupSummary& g : groups)
    if (g.zero_variance) ids.push_back(g.group_id);
  return ids;
}

double standard_deviation(const std::vector<double>& values, double mean, StdEstimator estimator) {
  const size_t n = values.size();
  if (n < 2) return 0.0;
  double squares = 0;
  for (double v : values) squares += (v - mean) * (v - mean);
  const double dof = estimator == StdEstimator::Unbiased ? double(n - 1) : double(n);
  return std::sqrt(squares / dof);
}

double mean_of(const std::vector<double>& values) {
  double sum = 0;
  for (double v : values) sum += v;
  return values.empty() ? 0.0 : sum / double(values.size());
}

bool all_equal(const std::vector<double>& values) {
  for (double v : values)
    if (v != values.front()) return false;
  return true;
}

GroupAdvantages group_advantages(const Tensor& rewards, const Tensor& group_ids, const AdvantageOptions& options) {
  const char* where = "group_advantages";
  if (!rewards.defined() || rewards.dim() != 1) fail(where, "rewards must be [N], got " + shape_of(rewards));
  if (!group_ids.defined() || group_ids.sizes() != rewards.sizes())
    fail(where, "group_ids must have the shape of rewards " + shape_of(rewards) + ", got " + shape_of(group_ids));
  if (c10::isFloatingType(group_ids.scalar_type()) || group_ids.scalar_type() == torch::kBool)
    fail(where, "group_ids must be an integer tensor");
  if (!(options.eps >= 0)) fail(where, "eps must be >= 0, got " + std::to_string(options.eps));

  const Tensor r_cpu = rewards.detach().to(torch::kCPU, torch::kDouble).contiguous();
  const Tensor g_cpu = group_ids.to(torch::kCPU, torch::kLong).contiguous();
  const double* r = r_cpu.data_ptr<double>();
  const int64_t* g = g_cpu.data_ptr<int64_t>();
  const int64_t n = rewards.size(0);
  for (int64_t i = 0; i < n; ++i)
    if (!std::isfinite(r[i])) fail(where, "reward " + std::to_string(i) + " is not finite (" + std::to_string(r[i]) + ")");

  // Members of each group, groups in order of first appearance.
  std::unordered_map<int64_t, size_t> slot;
  std::vector<std::vector<int64_t>> members;
  GroupAdvantages out;
  for (int64_t i = 0; i < n; ++i) {
    auto [it, inserted] = slot.emplace(g[i], members.size());
    if (inserted) {
      members.emplace_back();
      out.groups.push_back(GroupSummary{g[i]});
    }
    members[it->second].push_back(i);
  }

  std::vector<double> group_mean(members.size());
  for (size_t k = 0; k < members.size(); ++k) {
    std::vector<double> values;
    for (int64_t i : members[k]) values.push_back(r[i]);
    GroupSummary& s = out.groups[k];
    s.size = int64_t(values.size());
    s.mean = group_mean[k] = mean_of(values);
    s.std = standard_deviation(values, s.mean, options.std_estimator);
    s.zero_variance = all_equal(values);
  }

  double batch_std = 0;
  if (options.scaling == AdvantageScaling::Batch) {
    std::vector<double> all(r, r + n);
    batch_std = standard_deviation(all, mean_of(all), options.std_estimator);
  }

  out.advantages = torch::zeros({n}, torch::kDouble);
  double* a = out.advantages.data_ptr<double>();
  for (size_t k = 0; k < members.size(); ++k) {
    const GroupSummary& s = out.groups[k];
    if (s.zero_variance) continue;  // exactly 0, as DAPO's filter assumes
    double scale = 1.0;
    if (options.scaling == AdvantageScaling::Group) scale = 1.0 / (s.std + options.eps);
    if (options.scaling == AdvantageScaling::Batch) scale = 1.0 / (batch_std + options.eps);
    for (int64_t i : members[k]) a[i] = (r[i] - group_mean[k]) * scale;
  }
  out.advantages = out.advantages.to(rewards.device());
  return out;
}

// =============================================================================================
// 2. Per-token policy loss
// =============================================================================================

namespace {

void check_policy_options(const PolicyLossOptions& o) {
  const char* where = "per_token_policy_loss";
  if (!(o.clip_low >= 0)) fail(where, "clip_low (epsilon_low) must be >= 0, got " + std::to_string(o.clip_low));
  if (!(o.clip_high >= 0)) fail(where, "clip_high (epsilon_high) must be >= 0, got " + std::to_string(o.clip_high));
  if (!(o.dual_clip == 0 || o.dual_clip > 1))
    fail(where, "dual_clip must be 0 (off) or > 1, got " + std::to_string(o.dual_clip));
  if (!(o.kl_coef >= 0)) fail(where, "kl_coef (beta) must be >= 0, got " + std::to_string(o.kl_coef));
  if (!(o.entropy_coef >= 0)) fail(where, "entropy_coef must be >= 0, got " + std::to_string(o.entropy_coef));
}

// Token-level log-ratio: log ρ_{i,t} = clamp(log π_θ − log π_old, ±20) (verl compute_policy_loss_vanilla).
Tensor token_log_ratio(const Tensor& logp, const Tensor& old_logp) {
  return torch::clamp(logp - old_logp, -kLogRatioBound, kLogRatioBound);
}

// GSPO (arXiv 2507.18071) sequence ratio s_i = exp( (1/|o_i|) Σ_t m·log(π_θ/π_old) ), written in the
// token form of verl's compute_policy_loss_gspo:
//     log s_{i,t} = sg[log s_i] + log π_θ(o_{i,t}) − sg[log π_θ(o_{i,t})]
// Its value is log s_i at every token; its gradient with respect to log π_θ(o_{i,t}) is 1 instead of
// 1/|o_i|, which the per-sequence token mean of the aggregation (seq-mean-token-mean) divides back out,
// so the gradient is exactly that of the sequence-level objective.
Tensor sequence_log_ratio(const Tensor& logp, const Tensor& old_logp, const Tensor& mask) {
  const Tensor log_ratio = torch::where(mask, logp - old_logp, torch::zeros_like(logp));
  const Tensor lengths = mask.sum(-1, /*keepdim=*/true).clamp_min(1).to(logp.scalar_type());
  const Tensor log_s = (log_ratio.sum(-1, /*keepdim=*/true) / lengths).detach();  // [B, 1]
  const Tensor token_form = log_s + logp - logp.detach();                         // [B, T]
  return torch::clamp_max(token_form, kSequenceLogRatioMax);
}

// Clipped surrogate (PPO; GRPO eq. 3; DAPO eq. 10 with separate ε_low, ε_high), as a loss:
//     L = −min( ρ·A, clip(ρ, 1−ε_low, 1+ε_high)·A )
// Written as −min(...) rather than max(−..): identical values, and at ρ exactly on a bound both
// branches carry the same gradient, so a token on the bound is treated as unclipped (as the clip
// fractions count it: strictly beyond the bound).
// Dual clip (verl, clip_ratio_c = c > 1), for A < 0 only:  L = min(L, −c·A).
Tensor clipped_surrogate(const Tensor& ratio, const Tensor& adv, const PolicyLossOptions& o) {
  const Tensor unclipped = ratio * adv;
  const Tensor clipped = torch::clamp(ratio, 1.0 - o.clip_low, 1.0 + o.clip_high) * adv;
  Tensor loss = -torch::min(unclipped, clipped);
  if (o.dual_clip > 0) loss = torch::where(adv < 0, torch::min(loss, -o.dual_clip * adv), loss);
  return loss;
}

// KL estimators of D_KL[π_θ || π_ref] per token, from samples of π_θ (Schulman, "Approximating KL
// divergence"; verl kl_penalty_forward, clamps included):
//   k1 = log π_θ − log π_ref
//   k2 = ½ (log π_θ − log π_ref)²
//   k3 = exp(d) − d − 1 with d = clamp(log π_ref − log π_θ, ±20), clamped to [−10, 10]   (GRPO eq. 4)
Tensor kl_estimate(const Tensor& logp, const Tensor& ref_logp, KlEstimator estimator) {
  switch (estimator) {
    case KlEstimator::K1: return logp - ref_logp;
    case KlEstimator::K2: return 0.5 * (logp - ref_logp).square();
    case KlEstimator::K3: {
      const Tensor d = torch::clamp(ref_logp - logp, -kLogRatioBound, kLogRatioBound);
      return torch::clamp(torch::exp(d) - d - 1.0, -kK3Bound, kK3Bound);
    }
  }
  throw std::logic_error("kl_estimate: unknown estimator");
}

}  // namespace

PerTokenLoss per_token_policy_loss(const PolicyLossInputs& in, const PolicyLossOptions& options) {
  const char* where = "per_token_policy_loss";
  check_policy_options(options);
  if (!in.logp.defined() || in.logp.dim() != 2) fail(where, "logp must be [B, T], got " + shape_of(in.logp));
  const Tensor& logp = in.logp;
  const int64_t batch = logp.size(0);
  require_same_shape(where, "old_logp", in.old_logp, "logp", logp);
  require_same_shape(where, "mask", in.mask, "logp", logp);
  const bool per_token_advantages = in.advantages.defined() && in.advantages.dim() == 2;  // on-policy distillation
  if (per_token_advantages)
    require_same_shape(where, "advantages (per token)", in.advantages, "logp", logp);
  else if (!in.advantages.defined() || in.advantages.dim() != 1 || in.advantages.size(0) != batch)
    fail(where, "advantages must be [" + std::to_string(batch) + "] or [B, T], got " + shape_of(in.advantages));
  const bool use_kl = options.kl_coef != 0;
  const bool use_entropy = options.entropy_coef != 0;
  if (use_kl) require_same_shape(where, "ref_logp (needed because kl_coef != 0)", in.ref_logp, "logp", logp);
  if (use_entropy) require_same_shape(where, "entropy (needed because entropy_coef != 0)", in.entropy, "logp", logp);
  if (in.entropy.defined()) require_same_shape(where, "entropy", in.entropy, "logp", logp);

  // The behaviour policy, the reference and the advantages are constants of the objective.
  const Tensor mask = in.mask.to(torch::kBool);
  const Tensor old_logp = in.old_logp.detach().to(logp.scalar_type());
  const Tensor adv = per_token_advantages ? in.advantages.detach().to(logp.options())               // [B, T]
                                          : in.advantages.detach().to(logp.options()).unsqueeze(1);  // [B, 1]
  const Tensor zero = torch::zeros({}, logp.options());

  const Tensor log_ratio = options.ratio_level == RatioLevel::Token ? token_log_ratio(logp, old_logp)
                                                                    : sequence_log_ratio(logp, old_logp, mask);
  const Tensor ratio = torch::exp(log_ratio);  // [B, T]

  PerTokenLoss out;
  out.policy = torch::where(mask, clipped_surrogate(ratio, adv, options), zero);
  out.total = out.policy;
  if (use_kl) {
    out.kl = torch::where(mask, kl_estimate(logp, in.ref_logp.detach().to(logp.scalar_type()), options.kl_estimator), zero);
    out.total = out.total + options.kl_coef * out.kl;
  }
  if (use_entropy) {
    out.entropy = torch::where(mask, in.entropy.to(logp.scalar_type()), zero);
    out.total = out.total - options.entropy_coef * out.entropy;
  }

  torch::NoGradGuard no_grad;
  out.ratio = ratio.detach();
  const Tensor a = adv.expand_as(ratio);
  out.clipped_low = mask & (a < 0) & (out.ratio < 1.0 - options.clip_low);
  out.clipped_high = mask & (a > 0) & (out.ratio > 1.0 + options.clip_high);
  out.dual_clipped = options.dual_clip > 0 ? mask & (a < 0) & (out.ratio > options.dual_clip)
                                           : torch::zeros_like(mask);
  return out;
}

// =============================================================================================
// 3. Aggregation
// =============================================================================================
//
// verl agg_loss with global denominators (the new-engine path), TRL's loss_type normalisations:
//   token-mean               Σ_{i,t} m·l / N_tokens
//   seq-mean-token-mean      Σ_i (Σ_t m·l / Σ_t m) / N_seqs
//   seq-mean-token-sum       Σ_i Σ_t m·l / N_seqs
//   seq-mean-token-sum-norm  Σ_i Σ_t m·l / (N_seqs · L)       (Dr. GRPO; verl omits the N_seqs)
// N_tokens, N_seqs are the minibatch's (LossNormalizer), so each micro-batch contributes its share.

LossNormalizer LossNormalizer::count(const Tensor& mask, double max_length) {
  if (!mask.defined() || mask.dim() != 2) fail("LossNormalizer::count", "mask must be [B, T], got " + shape_of(mask));
  const Tensor m = mask.to(torch::kBool);
  LossNormalizer n;
  n.tokens = double(m.sum().item<int64_t>());
  n.sequences = double(m.any(-1).sum().item<int64_t>());
  n.max_length = max_length;
  return n;
}

LossNormalizer& LossNormalizer::operator+=(const LossNormalizer& other) {
  tokens += other.tokens;
  sequences += other.sequences;
  return *this;
}

Tensor aggregate_loss(const Tensor& loss, const Tensor& mask, LossAggregation mode, const LossNormalizer& normalizer) {
  const char* where = "aggregate_loss";
  if (!loss.defined() || loss.dim() != 2) fail(where, "loss must be [B, T], got " + shape_of(loss));
  require_same_shape(where, "mask", mask, "loss", loss);
  const Tensor m = mask.to(torch::kBool);
  const Tensor masked = torch::where(m, loss, torch::zeros({}, loss.options()));  // padding may hold NaN
  const double tokens = std::max(normalizer.tokens, 1.0);
  const double sequences = std::max(normalizer.sequences, 1.0);
  switch (mode) {
    case LossAggregation::TokenMean: return masked.sum() / tokens;
    case LossAggregation::SeqMeanTokenMean: {
      const Tensor lengths = m.sum(-1).clamp_min(1).to(loss.scalar_type());
      return (masked.sum(-1) / lengths).sum() / sequences;
    }
    case LossAggregation::SeqMeanTokenSum: return masked.sum() / sequences;
    case LossAggregation::SeqMeanTokenSumNorm:
      if (!(normalizer.max_length > 0))
        fail(where, "seq-mean-token-sum-norm needs the constant max_length > 0 in the normalizer, got " +
                        std::to_string(normalizer.max_length));
      return masked.sum() / (sequences * normalizer.max_length);
  }
  throw std::logic_error("aggregate_loss: unknown mode");
}

// =============================================================================================
// 4. One micro-batch: loss and statistics
// =============================================================================================

LossStats& LossStats::operator+=(const LossStats& o) {
  if (o.tokens > 0) {
    ratio_min = tokens > 0 ? std::min(ratio_min, o.ratio_min) : o.ratio_min;
    ratio_max = tokens > 0 ? std::max(ratio_max, o.ratio_max) : o.ratio_max;
  }
  tokens += o.tokens;
  clipped_low += o.clipped_low;
  clipped_high += o.clipped_high;
  dual_clipped += o.dual_clipped;
  ratio_sum += o.ratio_sum;
  old_minus_new_sum += o.old_minus_new_sum;
  ref_kl_sum += o.ref_kl_sum;
  entropy_sum += o.entropy_sum;
  has_ref_kl = has_ref_kl || o.has_ref_kl;
  has_entropy = has_entropy || o.has_entropy;
  policy_loss += o.policy_loss;
  kl_loss += o.kl_loss;
  entropy_loss += o.entropy_loss;
  return *this;
}

std::vector<std::pair<std::string, double>> LossStats::metrics() const {
  const double n = std::max(tokens, 1.0);
  std::vector<std::pair<std::string, double>> m = {
      {"pg_loss", policy_loss},
      {"kl_loss", kl_loss},
      {"entropy_loss", entropy_loss},
      {"clip_ratio/low_mean", clipped_low / n},
      {"clip_ratio/high_mean", clipped_high / n},
      {"clip_ratio/region_mean", (clipped_low + clipped_high) / n},
      {"clip_ratio/dual_mean", dual_clipped / n},
      {"ratio/mean", tokens > 0 ? ratio_sum / n : 1.0},
      {"ratio/min", tokens > 0 ? ratio_min : 1.0},
      {"ratio/max", tokens > 0 ? ratio_max : 1.0},
      {"approx_kl", old_minus_new_sum / n},
  };
  if (has_ref_kl) m.emplace_back("kl", ref_kl_sum / n);
  if (has_entropy) m.emplace_back("entropy", entropy_sum / n);
  return m;
}

namespace {

// Scalars computed where the loss lives, copied to the host together: a GPU run pays one
// device-to-host copy per micro-batch instead of one per statistic.
class HostScalars {
 public:
  // `*destination` receives `scalar` (a 0-dim tensor) at copy().
  void add(double* destination, const Tensor& scalar) {
    destinations_.push_back(destination);
    values_.push_back(scalar.to(torch::kDouble));
  }
  void copy() {
    const Tensor host = torch::stack(values_).cpu();
    const double* v = host.data_ptr<double>();
    for (size_t i = 0; i < destinations_.size(); ++i) *destinations_[i] = v[i];
  }

 private:
  std::vector<double*> destinations_;
  std::vector<Tensor> values_;
};

}  // namespace

MicroBatchLoss grpo_loss(const PolicyLossInputs& inputs, const ObjectiveOptions& options,
                         const LossNormalizer& normalizer) {
  const PerTokenLoss terms = per_token_policy_loss(inputs, options.policy);
  MicroBatchLoss out;
  out.loss = aggregate_loss(terms.total, inputs.mask, options.aggregation, normalizer);

  torch::NoGradGuard no_grad;
  const Tensor m = inputs.mask.to(torch::kBool);
  const Tensor zero = torch::zeros({}, terms.ratio.options());
  const double inf = std::numeric_limits<double>::infinity();
  const auto aggregate = [&](const Tensor& t) { return aggregate_loss(t.detach(), m, options.aggregation, normalizer); };
  const auto masked = [&](const Tensor& t, const Tensor& fill) { return torch::where(m, t, fill); };
  LossStats& s = out.stats;
  HostScalars host;
  host.add(&s.tokens, m.sum());
  host.add(&s.clipped_low, terms.clipped_low.sum());
  host.add(&s.clipped_high, terms.clipped_high.sum());
  host.add(&s.dual_clipped, terms.dual_clipped.sum());
  host.add(&s.ratio_sum, masked(terms.ratio, zero).sum());
  host.add(&s.ratio_min, masked(terms.ratio, torch::full({}, inf, terms.ratio.options())).min());
  host.add(&s.ratio_max, masked(terms.ratio, torch::full({}, -inf, terms.ratio.options())).max());
  host.add(&s.old_minus_new_sum, masked(inputs.old_logp.detach().to(inputs.logp.scalar_type()) - inputs.logp.detach(), zero).sum());
  host.add(&s.policy_loss, aggregate(terms.policy));
  if ((s.has_ref_kl = terms.kl.defined())) {
    host.add(&s.ref_kl_sum, terms.kl.sum());
    host.add(&s.kl_loss, aggregate(options.policy.kl_coef * terms.kl));
  }
  if ((s.has_entropy = inputs.entropy.defined())) {
    const Tensor entropy = masked(inputs.entropy.detach().to(inputs.logp.scalar_type()), zero);
    host.add(&s.entropy_sum, entropy.sum());
    if (options.policy.entropy_coef != 0) host.add(&s.entropy_loss, aggregate(-options.policy.entropy_coef * entropy));
  }
  host.copy();
  if (s.tokens == 0) s.ratio_min = s.ratio_max = 0;  // the ±inf fill values of an empty mask
  return out;
}

}  // namespace grpo
