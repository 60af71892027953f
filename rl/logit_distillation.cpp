#include "rl/logit_distillation.h"

#include <fmt/core.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "policy/stopwatch.h"
#include "rl/epoch_shuffled_batches.h"

namespace grpo {
namespace {

torch::Device device_of(CausalLM& model) { return model->model->embed_tokens->weight.device(); }

ModelInputs inputs_on(const SftBatch& batch, torch::Device device) {
  ModelInputs in;
  in.input_ids = batch.input_ids.to(device);
  in.attention_mask = batch.attention_mask.to(device);
  in.position_ids = batch.position_ids.to(device);
  return in;
}

void check_config(const LogitDistillationConfig& c) {
  if (c.batch_size < 1 || c.micro_batch_size < 1)
    throw std::invalid_argument(fmt::format("distill: batch_size and micro_batch_size must be >= 1, got {} and {}", c.batch_size,
                                            c.micro_batch_size));
  if (!(c.temperature > 0)) throw std::invalid_argument(fmt::format("distill: temperature must be > 0, got {}", c.temperature));
  if (c.top_k < 0) throw std::invalid_argument(fmt::format("distill: top_k must be >= 0 (0 = full vocabulary), got {}", c.top_k));
  if (c.chunk_positions < 1) throw std::invalid_argument("distill: chunk_positions must be >= 1");
}

}  // namespace

DistillationBatchLoss logit_distillation_loss(CausalLM& student, CausalLM& teacher, const SftBatch& batch,
                                              const LogitDistillationConfig& config) {
  const torch::Device device = device_of(student), teacher_device = device_of(teacher);
  // Only the completion positions are projected: [N, H] -> [N, V], never [B, T, V].
  const torch::Tensor keep = batch.loss_mask.to(device) > 0;                           // [B, T]
  const torch::Tensor student_hidden = student->forward_hidden(inputs_on(batch, device)).hidden.index({keep});  // [N, H]
  torch::Tensor teacher_hidden;                                                         // [N, H_T]
  {
    torch::NoGradGuard no_grad;
    teacher_hidden = teacher->forward_hidden(inputs_on(batch, teacher_device)).hidden.index({keep.to(teacher_device)});
  }
  const torch::Tensor targets = batch.targets.to(device).index({keep});                // [N]
  DistillationBatchLoss out;
  out.tokens = targets.size(0);
  out.sum = torch::zeros({}, torch::TensorOptions().dtype(torch::kFloat).device(device));
  for (int64_t c0 = 0; c0 < out.tokens; c0 += config.chunk_positions) {
    const int64_t n = std::min(config.chunk_positions, out.tokens - c0);
    torch::Tensor teacher_logits;  // [n, V], a constant
    {
      torch::NoGradGuard no_grad;
      teacher_logits = teacher->logits(teacher_hidden.narrow(0, c0, n)).to(device);
    }
    const torch::Tensor student_logits = student->logits(student_hidden.narrow(0, c0, n));  // [n, V]
    const torch::Tensor per_token = config.top_k > 0
                                        ? forward_kl_top_k(student_logits, teacher_top_k(teacher_logits, config.top_k, config.temperature),
                                                           config.temperature)
                                        : forward_kl(student_logits, teacher_logits, config.temperature);
    out.sum = out.sum + per_token.sum().to(torch::kFloat);
    torch::NoGradGuard no_grad;
    out.kl_sum += forward_kl(student_logits.detach(), teacher_logits).sum().item<double>();
    out.agreement += distillation_agreement(student_logits, teacher_logits, targets.narrow(0, c0, n));
  }
  return out;
}

int64_t logit_distillation_steps(const LogitDistillationConfig& config, size_t examples) {
  SftConfig as_sft;
  as_sft.steps = config.steps;
  as_sft.epochs = config.epochs;
  as_sft.batch_size = config.batch_size;
  return sft_steps(as_sft, examples);
}

LogitDistillationResult logit_distillation(CausalLM& student, CausalLM& teacher, const std::vector<SftExample>& examples,
                                           const LogitDistillationConfig& config, int32_t pad_id,
                                           const std::function<void(const LogitDistillationProgress&)>& on_step) {
  if (examples.empty()) throw std::invalid_argument("distill: no examples");
  check_config(config);
  const int64_t student_vocab = student->config().vocab_size, teacher_vocab = teacher->config().vocab_size;
  if (student_vocab != teacher_vocab)
    throw std::invalid_argument(fmt::format("distill: the student's vocabulary has {} entries and the teacher's {}; logit "
                                            "distillation compares distributions token by token and needs one vocabulary",
                                            student_vocab, teacher_vocab));
  if (config.top_k > student_vocab)
    throw std::invalid_argument(fmt::format("distill: top_k {} is larger than the vocabulary ({})", config.top_k, student_vocab));
  const int64_t n = static_cast<int64_t>(examples.size());
  const int64_t steps = logit_distillation_steps(config, examples.size());
  LrSchedule schedule = config.lr;
  if (schedule.total_steps == 0) schedule.total_steps = std::max<int64_t>(steps, schedule.warmup_steps + 1);
  validate(schedule);
  AdamWSettings settings = config.adamw;
  settings.lr = schedule.peak;
  PolicyOptimizer optimizer(student->parameters(), settings);
  teacher->eval();  // frozen: no dropout-like behaviour, no router statistics, never stepped

  EpochShuffledBatches walk(n, config.seed);  // the same walk as sft()

  LogitDistillationResult result;
  result.steps = steps;
  const int64_t tail_from = steps - std::max<int64_t>(1, steps / 10);
  double tail_loss = 0;
  int64_t tail_steps = 0;
  student->train();
  for (int64_t step = 0; step < steps; ++step) {
    Stopwatch stopwatch;
    std::vector<const SftExample*> chosen;  // the step's examples, in the same shuffled walk as sft()
    for (int64_t i : walk.next(config.batch_size)) chosen.push_back(&examples[static_cast<size_t>(i)]);
    // The micro-batches' layouts first: the step's token count divides every micro-batch's sum.
    std::vector<SftBatch> micro;
    int64_t step_tokens = 0, real_tokens = 0;
    for (size_t u0 = 0; u0 < chosen.size(); u0 += static_cast<size_t>(config.micro_batch_size)) {
      const size_t u1 = std::min(chosen.size(), u0 + static_cast<size_t>(config.micro_batch_size));
      const std::vector<const SftExample*> part(chosen.begin() + static_cast<std::ptrdiff_t>(u0),
                                                chosen.begin() + static_cast<std::ptrdiff_t>(u1));
      SftBatch b = build_sft_batch(part, config.max_len, /*pack=*/false, pad_id);
      result.truncated += b.truncated;
      result.dropped += b.dropped;
      step_tokens += static_cast<int64_t>(b.loss_mask.sum().item<double>());
      real_tokens += b.attention_mask.sum().item<int64_t>();
      if (b.input_ids.size(0) > 0) micro.push_back(std::move(b));
    }
    LogitDistillationProgress p;
    p.step = step;
    p.total_steps = steps;
    p.epoch = walk.epoch();
    p.learning_rate = learning_rate(schedule, step);
    optimizer.zero_grad();
    double loss_sum = 0, kl_sum = 0;
    DistillationAgreement agreement;
    bool finite = step_tokens > 0;
    for (const SftBatch& b : micro) {
      if (!finite) break;
      DistillationBatchLoss l = logit_distillation_loss(student, teacher, b, config);
      const torch::Tensor share = l.sum / static_cast<double>(step_tokens);
      finite = torch::isfinite(share).item<bool>();
      if (!finite) break;
      share.backward();
      loss_sum += l.sum.item<double>();
      kl_sum += l.kl_sum;
      agreement += l.agreement;
    }
    if (finite) {
      p.grad_norm = optimizer.clip_and_step(config.max_grad_norm, p.learning_rate);
      p.skipped = !std::isfinite(p.grad_norm);
    } else {
      optimizer.zero_grad();
      p.grad_norm = NAN;
      p.skipped = true;
    }
    p.tokens = step_tokens;
    const double tokens = std::max<double>(1, static_cast<double>(step_tokens));
    p.loss = loss_sum / tokens;
    p.kl = kl_sum / tokens;
    p.logprob_gap = agreement.logprob_gap_sum / std::max(1.0, agreement.positions);
    p.argmax_agreement = agreement.argmax_agree / std::max(1.0, agreement.positions);
    result.skipped_updates += p.skipped;
    result.tokens += step_tokens;
    if (step >= tail_from) {
      tail_loss += p.loss;
      ++tail_steps;
    }
    p.tokens_per_second = static_cast<double>(real_tokens) / std::max(stopwatch.seconds(), 1e-9);
    if (on_step) on_step(p);
  }
  student->eval();
  result.final_loss = tail_loss / std::max<int64_t>(tail_steps, 1);
  return result;
}

}  // namespace grpo
