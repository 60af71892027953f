#include "rl/distillation_loss.h"

#include <fmt/core.h>

#include <limits>
#include <stdexcept>
#include <string>

namespace grpo {
namespace {

using torch::Tensor;

std::string shape_text(const Tensor& t) {
  if (!t.defined()) return "undefined";
  std::string s = "[";
  for (int64_t d = 0; d < t.dim(); ++d) s += (d ? ", " : "") + std::to_string(t.size(d));
  return s + "]";
}

void check_temperature(const char* where, double temperature) {
  if (!(temperature > 0)) throw std::invalid_argument(fmt::format("{}: temperature must be > 0, got {}", where, temperature));
}

void check_logits(const char* where, const char* name, const Tensor& logits) {
  if (!logits.defined() || logits.dim() != 2)
    throw std::invalid_argument(fmt::format("{}: {} must be [N, V], got {}", where, name, shape_text(logits)));
}

void check_pair(const char* where, const Tensor& student, const Tensor& teacher) {
  check_logits(where, "student_logits", student);
  check_logits(where, "teacher_logits", teacher);
  if (student.size(0) != teacher.size(0))
    throw std::invalid_argument(fmt::format("{}: student_logits {} and teacher_logits {} cover different positions", where,
                                            shape_text(student), shape_text(teacher)));
  if (student.size(1) != teacher.size(1))
    throw std::invalid_argument(fmt::format("{}: the student's vocabulary has {} entries, the teacher's {}; distillation "
                                            "needs one tokenizer and one vocabulary",
                                            where, student.size(1), teacher.size(1)));
}

// Tempered log-softmax in float32 (float64 stays float64): bf16 logits lose the small differences.
Tensor tempered_log_softmax(const Tensor& logits, double temperature) {
  Tensor z = logits.scalar_type() == torch::kDouble ? logits : logits.to(torch::kFloat);
  if (temperature != 1.0) z = z / temperature;
  return torch::log_softmax(z, -1);
}

}  // namespace

TeacherTopK teacher_top_k(const Tensor& teacher_logits, int64_t k, double temperature) {
  const char* where = "teacher_top_k";
  check_logits(where, "teacher_logits", teacher_logits);
  check_temperature(where, temperature);
  if (k < 1 || k > teacher_logits.size(1))
    throw std::invalid_argument(fmt::format("{}: top_k must be in 1..{} (the vocabulary), got {}", where, teacher_logits.size(1), k));
  torch::NoGradGuard no_grad;
  const Tensor logp = tempered_log_softmax(teacher_logits.detach(), temperature);  // [N, V]
  auto [values, ids] = logp.topk(k, /*dim=*/-1);
  return {values, ids};
}

Tensor forward_kl(const Tensor& student_logits, const Tensor& teacher_logits, double temperature) {
  const char* where = "forward_kl";
  check_pair(where, student_logits, teacher_logits);
  check_temperature(where, temperature);
  const Tensor log_q = tempered_log_softmax(student_logits, temperature);            // [N, V]
  const Tensor log_p = tempered_log_softmax(teacher_logits.detach(), temperature);   // [N, V] constant
  // Σ p (log p − log q); p = 0 entries contribute 0 (exp(−inf) · finite).
  const Tensor p = log_p.exp();
  const Tensor terms = torch::where(p > 0, p * (log_p - log_q.to(log_p.scalar_type())), torch::zeros({}, log_p.options()));
  return terms.sum(-1) * (temperature * temperature);
}

Tensor forward_kl_top_k(const Tensor& student_logits, const TeacherTopK& teacher, double temperature) {
  const char* where = "forward_kl_top_k";
  check_logits(where, "student_logits", student_logits);
  check_temperature(where, temperature);
  if (!teacher.logprobs.defined() || !teacher.ids.defined() || teacher.logprobs.dim() != 2 ||
      teacher.logprobs.sizes() != teacher.ids.sizes() || teacher.logprobs.size(0) != student_logits.size(0))
    throw std::invalid_argument(fmt::format("{}: the teacher's top-k log-probs {} and ids {} must be [N, k] with N = {} "
                                            "(the student's positions)",
                                            where, shape_text(teacher.logprobs), shape_text(teacher.ids), student_logits.size(0)));
  const int64_t k = teacher.ids.size(1), vocab = student_logits.size(1);
  if (k > vocab)
    throw std::invalid_argument(fmt::format("{}: the teacher kept {} tokens per position, the student's vocabulary has {}", where, k, vocab));
  const Tensor log_q = tempered_log_softmax(student_logits, temperature);  // [N, V]
  const Tensor log_p = teacher.logprobs.detach().to(log_q.scalar_type());  // [N, k]
  const Tensor ids = teacher.ids.to(torch::kLong);
  const Tensor log_q_top = log_q.gather(-1, ids);                           // [N, k]
  Tensor loss = (log_p.exp() * (log_p - log_q_top)).sum(-1);               // [N]
  if (k < vocab) {
    // The rest bucket. Teacher: log r_T = log(1 − Σ p_i) = log(−expm1(logsumexp log p_i)). Student: the
    // logsumexp of its log-probs outside the top k, exact even where r_S underflows 1 − Σ q_i.
    const Tensor top_mass = torch::logsumexp(log_p, -1);                    // [N] log Σ p_i (≤ 0)
    const Tensor r_t = (-torch::expm1(top_mass)).clamp_min(0);             // [N]
    const Tensor outside = torch::ones_like(log_q, torch::TensorOptions().dtype(torch::kBool)).scatter(-1, ids, false);
    const Tensor log_r_s = torch::logsumexp(log_q.masked_fill(~outside, -std::numeric_limits<double>::infinity()), -1);
    const Tensor rest = torch::where(r_t > 0, r_t * (torch::log(r_t.clamp_min(1e-38)) - log_r_s), torch::zeros({}, log_q.options()));
    loss = loss + rest;
  }
  return loss * (temperature * temperature);
}

Tensor reverse_kl(const Tensor& student_logits, const Tensor& teacher_logits, double temperature) {
  const char* where = "reverse_kl";
  check_pair(where, student_logits, teacher_logits);
  check_temperature(where, temperature);
  const Tensor log_q = tempered_log_softmax(student_logits, temperature);
  const Tensor log_p = tempered_log_softmax(teacher_logits.detach(), temperature).to(log_q.scalar_type());
  return (log_q.exp() * (log_q - log_p)).sum(-1);
}

Tensor sampled_reverse_kl(const Tensor& student_logprobs, const Tensor& teacher_logprobs) {
  if (!student_logprobs.defined() || !teacher_logprobs.defined() || student_logprobs.sizes() != teacher_logprobs.sizes())
    throw std::invalid_argument(fmt::format("sampled_reverse_kl: student log-probs {} and teacher log-probs {} must have one shape",
                                            shape_text(student_logprobs), shape_text(teacher_logprobs)));
  return student_logprobs - teacher_logprobs.detach().to(student_logprobs.scalar_type());
}

DistillationAgreement& DistillationAgreement::operator+=(const DistillationAgreement& other) {
  positions += other.positions;
  logprob_gap_sum += other.logprob_gap_sum;
  argmax_agree += other.argmax_agree;
  return *this;
}

DistillationAgreement distillation_agreement(const Tensor& student_logits, const Tensor& teacher_logits, const Tensor& targets,
                                             double temperature) {
  const char* where = "distillation_agreement";
  check_pair(where, student_logits, teacher_logits);
  if (!targets.defined() || targets.dim() != 1 || targets.size(0) != student_logits.size(0))
    throw std::invalid_argument(fmt::format("{}: targets must be [{}], got {}", where, student_logits.size(0), shape_text(targets)));
  torch::NoGradGuard no_grad;
  const Tensor log_q = tempered_log_softmax(student_logits.detach(), temperature);
  const Tensor log_p = tempered_log_softmax(teacher_logits.detach(), temperature).to(log_q.scalar_type());
  const Tensor t = targets.to(torch::kLong).unsqueeze(1);
  DistillationAgreement a;
  a.positions = static_cast<double>(targets.size(0));
  a.logprob_gap_sum = (log_q.gather(-1, t) - log_p.gather(-1, t)).sum().item<double>();
  a.argmax_agree = (log_q.argmax(-1) == log_p.argmax(-1)).sum().item<double>();
  return a;
}

}  // namespace grpo
