#pragma once
// The per-token losses of knowledge distillation from a teacher T into a student S that share one
// tokenizer (docs/distillation.md). Rows are positions: N positions, V vocabulary entries, and the
// distributions are tempered, p = softmax(z / τ).
//
//   forward KL  (logit KD, Hinton et al. 2015)   Σ_v p_T(v) (log p_T(v) − log p_S(v)) · τ²
//   top-k forward KL with the rest's mass         over the teacher's k most likely tokens plus one
//                                                 "rest" bucket holding everything else (not renormalised)
//   reverse KL  (GKD with β = 1, full vocabulary)  Σ_v p_S(v) (log p_S(v) − log p_T(v))
//   sampled reverse KL (on-policy distillation)   log π_S(y_t) − log π_T(y_t) for the sampled token y_t
//
// Every loss is computed in float32 (float64 inputs stay float64) whatever the models' dtype, and
// gradients flow into the student's logits only: the teacher's are constants.
#include <torch/torch.h>

#include <cstdint>

namespace grpo {

// The teacher's k most likely tokens at each position, in compact form: what a top-k loss needs of the
// teacher (k log-probs and k ids per position instead of V logits).
struct TeacherTopK {
  torch::Tensor logprobs;  // [N, k] float32: log p_T of the k tokens, tempered
  torch::Tensor ids;       // [N, k] int64
};

// Throws std::invalid_argument for k < 1, k > V or temperature <= 0.
TeacherTopK teacher_top_k(const torch::Tensor& teacher_logits, int64_t k, double temperature = 1.0);

// Forward KL(p_T ‖ p_S) per position over the full vocabulary, multiplied by τ² so that the gradient's
// scale does not shrink as τ grows (Hinton et al.). student_logits, teacher_logits: [N, V]. Returns [N].
// Throws std::invalid_argument naming the input whose shape disagrees (a different vocabulary size
// included) or for temperature <= 0.
torch::Tensor forward_kl(const torch::Tensor& student_logits, const torch::Tensor& teacher_logits, double temperature = 1.0);

// Forward KL over the teacher's top k tokens and one bucket for the rest of the vocabulary:
//   Σ_{i ≤ k} p_i (log p_i − log q_i) + r_T (log r_T − log r_S),  r = 1 − Σ_{i ≤ k} p_i (teacher), the
// student's probability of the same k tokens q_i and of all others r_S = 1 − Σ q_i (from a logsumexp over
// the non-top-k logits, so it stays exact when r_S is tiny). The rest bucket keeps it a true KL between
// two distributions over k + 1 outcomes: 0 exactly when the student matches the teacher's top k and its
// total mass on the rest. Multiplied by τ². Returns [N].
torch::Tensor forward_kl_top_k(const torch::Tensor& student_logits, const TeacherTopK& teacher, double temperature = 1.0);

// Reverse KL(p_S ‖ p_T) per position over the full vocabulary (GKD's on-policy divergence with β = 1;
// mode-seeking). Returns [N] (not scaled by τ²).
torch::Tensor reverse_kl(const torch::Tensor& student_logits, const torch::Tensor& teacher_logits, double temperature = 1.0);

// The one-sample estimate of reverse KL at a sampled token: log π_S(y) − log π_T(y), elementwise on
// aligned [B, T] log-probs. Its expectation under y ~ π_S is the reverse KL; negated, it is the per-token
// advantage of on-policy distillation (the teacher's log-prob as a dense reward).
torch::Tensor sampled_reverse_kl(const torch::Tensor& student_logprobs, const torch::Tensor& teacher_logprobs);

// Diagnostics of a student against a teacher at the same positions (no gradients): sums, so chunks and
// micro-batches add up.
struct DistillationAgreement {
  double positions = 0;
  double logprob_gap_sum = 0;  // Σ (log p_S(y) − log p_T(y)) at the target token y
  double argmax_agree = 0;     // positions where the student's most likely token is the teacher's
  DistillationAgreement& operator+=(const DistillationAgreement& other);
};
// targets: [N] the tokens whose log-probs are compared (the completion's next tokens).
DistillationAgreement distillation_agreement(const torch::Tensor& student_logits, const torch::Tensor& teacher_logits,
                                             const torch::Tensor& targets, double temperature = 1.0);

}  // namespace grpo
