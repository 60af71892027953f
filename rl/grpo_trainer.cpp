#include "rl/grpo_trainer.h"

#include <fmt/core.h>

#include <algorithm>
#include <deque>
#include <cmath>
#include <numeric>
#include <random>
#include <stdexcept>

#include "policy/stopwatch.h"
#include "policy/token_logprobs.h"
#include "rl/data_parallel.h"
#include "rl/sample_dataset.h"
#include "rl/sequence_batch.h"

namespace grpo {
namespace {

// Mean and (unbiased) standard deviation of a metric over the step's samples: "name", "name_std".
void add_mean_std(StepMetrics& m, const std::string& name, const std::vector<double>& values) {
  if (values.empty()) return;
  m[name] = mean_of(values);
  m[name + "_std"] = standard_deviation(values, m[name], StdEstimator::Unbiased);
}

}  // namespace

GrpoTrainer::GrpoTrainer(CausalLM policy, Tokenizer tokenizer, rewards::RuleSet rules, GrpoConfig config,
                         std::optional<ReferenceModel> reference)
    : policy_(std::move(policy)),
      tokenizer_(std::move(tokenizer)),
      config_(std::move(config)),
      reference_(std::move(reference)),
      monitor_(config_.warnings) {
  if (config_.group_size < 1) throw std::invalid_argument("train: group_size must be >= 1");
  if (config_.epochs < 1 || config_.minibatches < 1 || config_.micro_batch_size < 1)
    throw std::invalid_argument("train: epochs, minibatches and micro_batch_size must be >= 1");
  if (config_.distill_coef != 0 && !reference_)
    throw std::invalid_argument("train: distill_coef != 0 needs a teacher in the reference slot (on-policy distillation)");
  if (config_.distill_coef < 0 || config_.reward_coef < 0)
    throw std::invalid_argument(fmt::format("train: distill_coef and reward_coef must be >= 0, got {} and {}", config_.distill_coef,
                                            config_.reward_coef));
  if (config_.objective.policy.kl_coef != 0 && !reference_)
    reference_ = ReferenceModel::copy_of(policy_, policy_->model->embed_tokens->weight.device());
  validate(config_.lr);
  validate(overlong_penalty());
  config_.adamw.lr = config_.lr.peak;
  optimizer_ = std::make_unique<PolicyOptimizer>(policy_->parameters(), config_.adamw);
  if (Distributed* dist = config_.distributed; dist && dist->world_size() > 1) {
    // Refilling and batch-level statistics would need the ranks to agree on which groups to keep.
    if (config_.drop_zero_variance_groups) throw std::invalid_argument("train: dynamic sampling needs a single process for now");
    if (config_.advantages.scaling == AdvantageScaling::Batch)
      throw std::invalid_argument("train: advantage_scaling \"batch\" needs a single process for now");
    dist->broadcast_from_main(policy_->parameters());  // every rank starts from rank 0's weights
  }
  scorer_ = std::make_unique<rewards::ScorerPool>(std::move(rules), static_cast<int>(config_.reward_threads));
  failures_before_.assign(scorer_->rule_set().rules().size(), 0);
}

OverlongPenalty GrpoTrainer::overlong_penalty() const {
  return {config_.stop.max_new_tokens, config_.overlong_buffer, config_.overlong_penalty};
}

// The G samples of one prompt with their scores (the total includes the overlong penalty, when on).
struct GrpoTrainer::ScoredGroup {
  const PromptExample* example = nullptr;
  std::vector<Completion> completions;
  std::vector<rewards::SampleScore> scores;
  std::vector<double> overlong_penalties;
  bool zero_variance = false;
};

// What the rollout phase of a step produced on this rank.
struct GrpoTrainer::SampledGroups {
  std::vector<ScoredGroup> groups;  // in prompt order, refills last
  std::deque<PromptExample> refills;  // the prompts dynamic sampling added (a deque keeps pointers stable)
  double rollout_seconds = 0, reward_seconds = 0;
  int64_t generated_tokens = 0, refill_rounds = 0;
};

StepResult GrpoTrainer::step(const std::vector<PromptExample>& prompts, const PromptSource& more_prompts) {
  StepResult result;
  StepMetrics& m = result.metrics;
  const Stopwatch step_time;
  if (config_.reference_reset_every > 0 && step_ > 0 && step_ % config_.reference_reset_every == 0 && reference_)
    reference_->reset_to(policy_);
  for (MoeRouter& router : policy_->routers()) router->reset_load();

  // 1. Rollout and rewards: this rank's share of the prompts (data parallel), G samples each.
  const RankShare share = rank_share(static_cast<int64_t>(prompts.size()), config_.distributed);
  SampledGroups sampled = sample_groups(prompts, share, more_prompts);
  // 2. Reward metrics over everything sampled, on every rank the whole batch's.
  result.warnings = add_reward_metrics(sampled, m);
  // 3. Group-relative advantages of the groups the update uses.
  std::vector<const ScoredGroup*> kept;
  for (const ScoredGroup& g : sampled.groups)
    if (!(config_.drop_zero_variance_groups && g.zero_variance) && kept.size() < prompts.size()) kept.push_back(&g);
  std::vector<const Completion*> completions;
  const std::vector<double> advantages = advantages_of(kept, completions, m);
  result.samples = sample_log(sampled, kept, advantages, share.begin);
  // 4. Policy update.
  const Stopwatch update_time;
  const double skipped = completions.empty() ? 0.0 : policy_update(completions, advantages, m);
  const double update_seconds = update_time.seconds();
  result.skipped = skipped > 0;
  consecutive_skips_ = result.skipped ? consecutive_skips_ + 1 : 0;
  // 5. MoE load balance over the step (rollout and training forwards), then the optional bias update.
  balance_experts(m);

  m["timing/rollout"] = sampled.rollout_seconds;
  m["timing/reward"] = sampled.reward_seconds;
  m["timing/update"] = update_seconds;
  m["timing/step"] = step_time.seconds();
  m["tokens_per_second/rollout"] = sampled.rollout_seconds > 0 ? sampled.generated_tokens / sampled.rollout_seconds : 0;
  if (config_.distributed) reduce_rank_local_metrics(m, *config_.distributed);
  ++step_;
  m["step"] = static_cast<double>(step_);  // 1-based: the step just done, as the progress line and step-N checkpoints count
  if (consecutive_skips_ >= config_.max_consecutive_skips)
    throw std::runtime_error(fmt::format("train: {} steps in a row had a non-finite loss or gradient (last: grad_norm={}, "
                                         "pg_loss={}); lower the learning rate or check the rewards",
                                         consecutive_skips_, m["grad_norm"], m["pg_loss"]));
  return result;
}

GrpoTrainer::SampledGroups GrpoTrainer::sample_groups(const std::vector<PromptExample>& prompts, const RankShare& share,
                                                      const PromptSource& more_prompts) {
  RolloutOptions ro;
  ro.sampling = config_.sampling;
  ro.stop = config_.stop;
  ro.max_batch_rows = config_.rollout_batch_rows;
  ro.record_experts = replays_routing();
  RolloutEngine engine(policy_, &tokenizer_, ro);

  SampledGroups out;
  std::vector<const PromptExample*> todo;
  for (int64_t i = share.begin; i < share.end; ++i) todo.push_back(&prompts[i]);
  // Seeds follow the global prompt index, so ranks together sample what one process samples.
  int64_t prompt_counter = share.begin, informative = 0;
  while (!todo.empty()) {
    Stopwatch phase;
    std::vector<PromptRequest> requests;
    for (const PromptExample* p : todo)
      requests.push_back({p->prompt_ids, config_.group_size, mix_seeds(mix_seeds(config_.seed, static_cast<uint64_t>(step_)), prompt_counter++)});
    std::vector<Completion> completions = engine.generate(requests);
    out.rollout_seconds += phase.restart();
    out.generated_tokens += engine.stats().generated_tokens;

    std::vector<rewards::Sample> samples;
    for (const Completion& c : completions) samples.push_back(reward_input(*todo[c.request_index], c));
    std::vector<rewards::SampleScore> scores = scorer_->score(samples);
    out.reward_seconds += phase.seconds();

    for (size_t g = 0; g < todo.size(); ++g) {
      ScoredGroup group;
      group.example = todo[g];
      for (int64_t s = 0; s < config_.group_size; ++s) {
        size_t i = g * config_.group_size + s;
        group.completions.push_back(std::move(completions[i]));
        group.scores.push_back(std::move(scores[i]));
        // DAPO soft overlong punishment joins the reward before advantages (and zero-variance) see it.
        const double penalty = soft_overlong_penalty(overlong_penalty(), static_cast<int64_t>(group.completions.back().completion_ids.size()));
        group.scores.back().total += penalty;
        group.overlong_penalties.push_back(penalty);
      }
      std::vector<double> totals;
      for (const rewards::SampleScore& score : group.scores) totals.push_back(score.total);
      group.zero_variance = all_equal(totals);
      informative += !group.zero_variance;
      out.groups.push_back(std::move(group));
    }
    todo.clear();
    // DAPO dynamic sampling: zero-variance groups carry no signal; sample more prompts in their place.
    const int64_t wanted = static_cast<int64_t>(prompts.size());
    if (!config_.drop_zero_variance_groups || informative >= wanted || out.refill_rounds >= config_.max_refill_rounds ||
        !more_prompts)
      break;
    ++out.refill_rounds;
    for (PromptExample& p : more_prompts(wanted - informative)) {
      out.refills.push_back(std::move(p));
      todo.push_back(&out.refills.back());
    }
  }
  return out;
}

std::vector<std::string> GrpoTrainer::add_reward_metrics(const SampledGroups& sampled, StepMetrics& m) {
  const std::vector<rewards::RuleSpec>& rules = scorer_->rule_set().rules();
  std::vector<double> totals, lengths, penalties;
  std::vector<std::vector<double>> per_rule(rules.size());
  std::vector<double> failed(rules.size(), 0.0);  // samples on which each rule failed, this step
  std::vector<std::string> first_failure(rules.size());
  int64_t truncated = 0, zero_variance = 0;
  bool all_rewards_zero = true;
  for (const ScoredGroup& g : sampled.groups) {
    zero_variance += g.zero_variance;
    for (size_t s = 0; s < g.completions.size(); ++s) {
      totals.push_back(g.scores[s].total);
      penalties.push_back(g.overlong_penalties[s]);
      for (const rewards::RuleScore& r : g.scores[s].rules) all_rewards_zero = all_rewards_zero && r.value == 0;
      lengths.push_back(static_cast<double>(g.completions[s].completion_ids.size()));
      truncated += g.completions[s].finish_reason == FinishReason::Length;
      for (size_t r = 0; r < rules.size(); ++r) {
        const rewards::RuleScore& score = g.scores[s].rules[r];
        per_rule[r].push_back(score.value);
        if (!score.failed()) continue;
        failed[r] += 1;
        if (first_failure[r].empty()) first_failure[r] = score.message;
      }
    }
  }
  int64_t sampled_groups = static_cast<int64_t>(sampled.groups.size());
  if (Distributed* dist = config_.distributed) {  // the whole batch's samples, in global prompt order
    totals = dist->all_gather(totals);
    lengths = dist->all_gather(lengths);
    penalties = dist->all_gather(penalties);
    for (std::vector<double>& values : per_rule) values = dist->all_gather(values);
    std::vector<double> counts = {double(truncated), double(zero_variance), double(sampled_groups), all_rewards_zero ? 0.0 : 1.0};
    dist->all_reduce(counts, Reduction::Sum);
    truncated = int64_t(counts[0]), zero_variance = int64_t(counts[1]), sampled_groups = int64_t(counts[2]);
    all_rewards_zero = counts[3] == 0;
    dist->all_reduce(failed, Reduction::Sum);
  }
  add_mean_std(m, "reward", totals);
  for (size_t r = 0; r < rules.size(); ++r) {
    add_mean_std(m, "rewards/" + rules[r].name, per_rule[r]);
    m["rewards/" + rules[r].name + "/failures"] = static_cast<double>(failures_before_[r] + scorer_->failures()[r].count);
    m["rewards/" + rules[r].name + "/failure_rate"] = failed[r] / static_cast<double>(totals.size());
    if (rules[r].name == "accuracy") m["accuracy"] = m["rewards/accuracy"];
  }
  m["completion_length/mean"] = std::accumulate(lengths.begin(), lengths.end(), 0.0) / lengths.size();
  m["completion_length/max"] = *std::max_element(lengths.begin(), lengths.end());
  m["completions/truncated_fraction"] = static_cast<double>(truncated) / lengths.size();
  m["frac_reward_zero_std"] = static_cast<double>(zero_variance) / sampled_groups;
  m["groups/sampled"] = static_cast<double>(sampled_groups);
  m["groups/refill_rounds"] = static_cast<double>(sampled.refill_rounds);
  if (config_.overlong_buffer > 0) add_mean_std(m, "rewards/overlong_penalty", penalties);
  StepHealth health;
  health.step = step_ + 1;
  health.all_rewards_zero = all_rewards_zero;
  health.truncated_fraction = m["completions/truncated_fraction"];
  health.max_new_tokens = config_.stop.max_new_tokens;
  health.groups = sampled_groups;
  health.zero_variance_groups = zero_variance;
  if (config_.distill_coef != 0 && config_.reward_coef == 0) {
    // Pure on-policy distillation: the rules' reward is not learned from, so flat or zero rewards are no
    // sign of a stuck run.
    health.all_rewards_zero = false;
    health.groups = health.zero_variance_groups = 0;
  }
  for (size_t r = 0; r < rules.size(); ++r)
    health.rule_failures.push_back(
        {rules[r].name, static_cast<int64_t>(failed[r]), static_cast<int64_t>(totals.size()), first_failure[r]});
  std::vector<std::string> warnings = monitor_.observe(health);
  monitor_.add_metrics(m);
  return warnings;
}

std::vector<double> GrpoTrainer::advantages_of(const std::vector<const ScoredGroup*>& kept,
                                               std::vector<const Completion*>& completions, StepMetrics& m) const {
  std::vector<double> rewards_kept, advantages;
  std::vector<int64_t> group_ids;
  for (size_t g = 0; g < kept.size(); ++g)
    for (size_t s = 0; s < kept[g]->completions.size(); ++s) {
      rewards_kept.push_back(kept[g]->scores[s].total);
      group_ids.push_back(static_cast<int64_t>(g));
      completions.push_back(&kept[g]->completions[s]);
    }
  if (completions.empty()) return advantages;
  GroupAdvantages adv = group_advantages(torch::tensor(rewards_kept, torch::kDouble), torch::tensor(group_ids, torch::kLong),
                                         config_.advantages);
  advantages.assign(adv.advantages.data_ptr<double>(), adv.advantages.data_ptr<double>() + adv.advantages.numel());
  add_mean_std(m, "advantages", config_.distributed ? config_.distributed->all_gather(advantages) : advantages);
  return advantages;
}

std::vector<ScoredSample> GrpoTrainer::sample_log(const SampledGroups& sampled, const std::vector<const ScoredGroup*>& kept,
                                                  const std::vector<double>& advantages, int64_t first_prompt) const {
  const std::vector<rewards::RuleSpec>& rules = scorer_->rule_set().rules();
  std::vector<ScoredSample> log;
  size_t kept_index = 0;
  for (size_t g = 0; g < sampled.groups.size(); ++g) {
    const ScoredGroup& group = sampled.groups[g];
    const bool is_kept = kept_index < kept.size() && kept[kept_index] == &group;
    for (size_t s = 0; s < group.completions.size(); ++s) {
      ScoredSample out;
      out.prompt_index = first_prompt + static_cast<int64_t>(g);
      out.prompt = group.example->prompt;
      out.record = group.example->record;
      out.completion = group.completions[s].text;
      out.reward = group.scores[s].total;
      out.advantage = is_kept ? advantages[kept_index * group.completions.size() + s] : 0.0;
      for (size_t r = 0; r < rules.size(); ++r) {
        const rewards::RuleScore& score = group.scores[s].rules[r];
        out.rule_values.push_back({rules[r].name, score.value});
        if (score.failed()) out.rule_failures.push_back({rules[r].name, score.message});
      }
      out.finish_reason = to_string(group.completions[s].finish_reason);
      out.completion_tokens = static_cast<int64_t>(group.completions[s].completion_ids.size());
      log.push_back(std::move(out));
    }
    kept_index += is_kept;
  }
  return config_.distributed ? all_gather(log, *config_.distributed) : log;
}

void GrpoTrainer::balance_experts(StepMetrics& m) {
  std::vector<MoeRouter> routers = policy_->routers();
  if (routers.empty()) return;
  double imbalance = 0;
  if (config_.distributed)  // the whole batch's load: metric, and bias updates that agree on every rank
    for (MoeRouter& r : routers) config_.distributed->all_reduce({r->load()}, Reduction::Sum);
  for (MoeRouter& r : routers) imbalance += (r->load().max() / r->load().mean().clamp_min(1e-9)).item<double>();
  m["moe/load_imbalance"] = imbalance / routers.size();  // max/mean expert load, averaged over layers
  if (config_.router_bias_update > 0) policy_->update_routing_biases(config_.router_bias_update);
}

// ---------------------------------------------------------------------------------------------
// 4. Policy update: μ passes over the step's samples, one optimizer step per minibatch
// ---------------------------------------------------------------------------------------------

// What the update accumulates over its minibatches, for the step's metrics.
struct GrpoTrainer::UpdateTotals {
  LossStats stats;
  double drift_sum = 0, drift_tokens = 0;  // |rollout − training log-prob| over first-pass tokens
  double grad_norm_sum = 0, trained_tokens = 0, learning_rate = 0;
  int64_t updates = 0, skipped = 0;
  double skipped_grad_norm = 0;  // the last skipped update's (non-finite) norm
};

// The loss denominators of a minibatch, counted over every rank (DAPO's token-mean over the batch).
struct GrpoTrainer::MinibatchNormalizer {
  LossNormalizer loss;
  double rows = 0;  // sequences in the minibatch, all ranks: the MoE aux loss's micro-batch weight
};

bool GrpoTrainer::replays_routing() const { return config_.routing_replay && policy_->config().has_moe(); }

LogprobOptions GrpoTrainer::logprob_options() const {
  LogprobOptions lp;
  lp.temperature = config_.sampling.greedy() ? 1.0 : config_.sampling.temperature;
  lp.chunk_positions = config_.logprob_chunk;
  return lp;
}

double GrpoTrainer::policy_update(const std::vector<const Completion*>& completions, const std::vector<double>& advantages,
                                  StepMetrics& m) {
  const torch::Device device = policy_->model->embed_tokens->weight.device();
  SequenceBatch all = build_sequence_batch(completions, advantages, replays_routing(), config_.mask_truncated).to(device);
  if (config_.objective.policy.kl_coef != 0 || config_.distill_coef != 0) {
    Stopwatch stopwatch;
    ModelInputs in;
    in.input_ids = all.input_ids;
    in.attention_mask = all.attention_mask;
    all.ref_logprobs = reference_->logprobs(in, all.first_position, all.targets, logprob_options());
    m["timing/reference"] = stopwatch.seconds();
  }
  if (config_.distill_coef != 0) add_teacher_advantages(all, m);

  policy_->train();
  UpdateTotals totals;
  const int64_t n = all.rows();
  std::vector<int64_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  for (int64_t epoch = 0; epoch < config_.epochs; ++epoch) {
    std::mt19937_64 rng(mix_seeds(mix_seeds(config_.seed, static_cast<uint64_t>(step_)), 1000 + epoch));
    std::shuffle(order.begin(), order.end(), rng);
    for (int64_t mb = 0; mb < config_.minibatches; ++mb) {
      const int64_t begin = n * mb / config_.minibatches, end = n * (mb + 1) / config_.minibatches;
      if (begin == end) continue;
      minibatch_step(all.select(std::vector<int64_t>(order.begin() + begin, order.begin() + end)), epoch == 0, totals);
    }
  }
  add_update_metrics(totals, m);
  return static_cast<double>(totals.skipped);
}

void GrpoTrainer::add_teacher_advantages(SequenceBatch& all, StepMetrics& m) const {
  // Per token: the sampled reverse KL to the teacher, log π_old(y_t) − log π_T(y_t), at rollout time.
  const torch::Tensor mask = all.completion_mask;                                    // [B, C]
  const torch::Tensor reverse_kl = (all.rollout_logprobs - all.ref_logprobs) * mask;  // [B, C]
  all.advantages = (config_.reward_coef * all.advantages.unsqueeze(1) - config_.distill_coef * reverse_kl) * mask;
  std::vector<double> sums = {reverse_kl.sum().item<double>(), (all.ref_logprobs * mask).sum().item<double>(),
                              (all.rollout_logprobs * mask).sum().item<double>(), mask.sum().item<double>()};
  if (config_.distributed) config_.distributed->all_reduce(sums, Reduction::Sum);
  const double tokens = std::max(sums[3], 1.0);
  m["distill/reverse_kl"] = sums[0] / tokens;  // = mean log-prob gap student − teacher on the student's tokens
  m["distill/teacher_logprob"] = sums[1] / tokens;
  m["distill/student_logprob"] = sums[2] / tokens;
}

GrpoTrainer::MinibatchNormalizer GrpoTrainer::normalizer_of(const SequenceBatch& minibatch) const {
  MinibatchNormalizer out{LossNormalizer::count(minibatch.completion_mask, static_cast<double>(config_.stop.max_new_tokens)),
                          static_cast<double>(minibatch.rows())};
  if (config_.distributed) {
    std::vector<double> counts = {out.loss.tokens, out.loss.sequences, out.rows};
    config_.distributed->all_reduce(counts, Reduction::Sum);
    out.loss.tokens = counts[0], out.loss.sequences = counts[1], out.rows = counts[2];
  }
  return out;
}

void GrpoTrainer::minibatch_step(const SequenceBatch& minibatch, bool first_pass, UpdateTotals& totals) {
  const MinibatchNormalizer normalizer = normalizer_of(minibatch);
  optimizer_->zero_grad();
  bool finite = true;
  for (int64_t u0 = 0; u0 < minibatch.rows() && finite; u0 += config_.micro_batch_size) {
    const int64_t u1 = std::min(minibatch.rows(), u0 + config_.micro_batch_size);
    std::vector<int64_t> rows(u1 - u0);
    std::iota(rows.begin(), rows.end(), u0);
    finite = micro_batch_backward(minibatch.select(rows), normalizer, first_pass, totals);
  }
  // Gradients summed over the ranks: each rank's loss is already divided by the global normaliser. A
  // rank with a non-finite loss makes every rank skip.
  const std::vector<torch::Tensor>& gradients = optimizer_->gradients();  // float32 for a bf16 policy
  if (config_.distributed) finite = config_.distributed->all_reduce_gradients(gradients, finite);
  double grad_norm = NAN;
  const double rate = learning_rate(config_.lr, optimizer_steps_);
  if (finite)
    grad_norm = optimizer_->clip_and_step(config_.max_grad_norm, rate);
  else
    optimizer_->zero_grad();
  if (!std::isfinite(grad_norm)) {
    ++totals.skipped;
    totals.skipped_grad_norm = grad_norm;
    return;
  }
  ++optimizer_steps_;
  ++totals.updates;
  totals.grad_norm_sum += grad_norm;
  totals.trained_tokens += normalizer.loss.tokens;
  totals.learning_rate = rate;
}

bool GrpoTrainer::micro_batch_backward(SequenceBatch micro, const MinibatchNormalizer& normalizer, bool first_pass,
                                       UpdateTotals& totals) {
  ModelInputs in;
  in.input_ids = micro.input_ids;
  in.attention_mask = micro.attention_mask;
  if (replays_routing()) in.routing = &micro.replay;
  ModelOutputs out = policy_->forward_hidden(in);
  torch::Tensor entropy;  // a metric always; in the loss only with entropy_coef > 0
  const int64_t width = micro.targets.size(1);
  torch::Tensor logp = logprobs_from_hidden(policy_, out.hidden.narrow(1, micro.first_position, width), micro.targets,
                                            logprob_options(), &entropy);
  PolicyLossInputs pin;
  pin.logp = logp;
  pin.old_logp = micro.rollout_logprobs;
  pin.advantages = micro.advantages;
  pin.mask = micro.completion_mask;
  pin.ref_logp = micro.ref_logprobs;
  pin.entropy = config_.objective.policy.entropy_coef != 0 ? entropy : entropy.detach();
  MicroBatchLoss loss = grpo_loss(pin, config_.objective, normalizer.loss);
  torch::Tensor total = loss.loss;
  if (out.aux_loss.defined()) total = total + out.aux_loss * (static_cast<double>(micro.rows()) / normalizer.rows);
  if (!torch::isfinite(total).item<bool>()) return false;
  total.backward();
  totals.stats += loss.stats;
  if (first_pass) {
    // Rollout vs training log-probs of the same tokens: should be ~0 for the first pass (same
    // weights); a growing value flags a numerics mismatch between sampling and training.
    torch::Tensor diff = (logp.detach() - micro.rollout_logprobs).abs() * micro.completion_mask;
    totals.drift_sum += diff.sum().item<double>();
    totals.drift_tokens += micro.completion_mask.sum().item<double>();
  }
  return true;
}

void GrpoTrainer::add_update_metrics(UpdateTotals& totals, StepMetrics& m) const {
  if (config_.distributed) {
    all_reduce(totals.stats, *config_.distributed);
    std::vector<double> drift = {totals.drift_sum, totals.drift_tokens};
    config_.distributed->all_reduce(drift, Reduction::Sum);
    totals.drift_sum = drift[0], totals.drift_tokens = drift[1];
  }
  for (const auto& [name, value] : totals.stats.metrics()) m[name] = value;
  if (totals.updates > 0) {
    m["grad_norm"] = totals.grad_norm_sum / static_cast<double>(totals.updates);
    m["learning_rate"] = totals.learning_rate;
  } else if (totals.skipped > 0) {
    m["grad_norm"] = totals.skipped_grad_norm;
  }
  m["rollout/logprob_diff_mean"] = totals.drift_tokens > 0 ? totals.drift_sum / totals.drift_tokens : 0.0;
  m["train/optimizer_steps"] = static_cast<double>(totals.updates);
  m["train/skipped_updates"] = static_cast<double>(totals.skipped);
  m["train/tokens"] = totals.trained_tokens;
}

bool GrpoTrainer::reference_was_reset() const {
  // The reset happens at the start of step `reference_reset_every` (0-based), so from then on.
  return reference_ && config_.reference_reset_every > 0 && step_ > config_.reference_reset_every;
}

nlohmann::json GrpoTrainer::counters() const {
  nlohmann::json failures = nlohmann::json::object();
  const std::vector<rewards::RuleSpec>& rules = scorer_->rule_set().rules();
  for (size_t r = 0; r < rules.size(); ++r) failures[rules[r].name] = failures_before_[r] + scorer_->failures()[r].count;
  return {{"step", step_},
          {"optimizer_steps", optimizer_steps_},
          {"consecutive_skips", consecutive_skips_},
          {"reward_rule_failures", failures},
          {"warnings", monitor_.state()}};
}

void GrpoTrainer::restore_counters(const nlohmann::json& c) {
  try {
    step_ = c.at("step").get<int64_t>();
    optimizer_steps_ = c.at("optimizer_steps").get<int64_t>();
    consecutive_skips_ = c.at("consecutive_skips").get<int64_t>();
    const std::vector<rewards::RuleSpec>& rules = scorer_->rule_set().rules();
    const nlohmann::json& failures = c.at("reward_rule_failures");
    if (failures.size() != rules.size())
      throw std::runtime_error(fmt::format("the checkpoint counts failures of {} reward rules, this rule set has {}", failures.size(),
                                           rules.size()));
    for (size_t r = 0; r < rules.size(); ++r)
      failures_before_[r] = failures.at(rules[r].name).get<int64_t>() - scorer_->failures()[r].count;
    monitor_.restore(c.at("warnings"));
  } catch (const nlohmann::json::exception& e) {
    throw std::runtime_error(fmt::format("trainer counters: {}", e.what()));
  }
}

}  // namespace grpo
