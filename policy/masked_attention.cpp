#include <ATen/Parallel.h>

#include <limits>
#include <vector>

#include "policy/forward_context.h"

namespace grpo {
namespace {

// Σ_i a[i]·b[i] in 8 independent lanes (summed at the end), a shape the compiler turns into vector
// instructions without reassociating anything.
template <typename T>
inline __attribute__((always_inline)) T lane_dot(const T* a, const T* b, int64_t n) {
  T lane[8] = {};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int j = 0; j < 8; ++j) lane[j] += a[i + j] * b[i + j];
  T sum = ((lane[0] + lane[1]) + (lane[2] + lane[3])) + ((lane[4] + lane[5]) + (lane[6] + lane[7]));
  for (; i < n; ++i) sum += a[i] * b[i];
  return sum;
}

// One (sequence, key head) pair of a decode step: scores[r, s] = scale · q[r] · k[s], or `lowest` for
// a blocked key. q: [rows, d] contiguous; k: row s at k + s·k_stride.
template <typename T>
inline __attribute__((always_inline)) void score_rows(const T* q, int64_t rows, int64_t d, const T* k, int64_t k_stride,
                                                      int64_t s, const bool* blocked, T scale, T lowest, T* scores) {
  for (int64_t j = 0; j < s; ++j) {
    const T* key = k + j * k_stride;
    if (blocked && blocked[j]) {
      for (int64_t r = 0; r < rows; ++r) scores[r * s + j] = lowest;
      continue;
    }
    for (int64_t r = 0; r < rows; ++r) scores[r * s + j] = lane_dot(q + r * d, key, d) * scale;
  }
}

// out[r] = Σ_s probs[r, s] · v[s]; out: [rows, dv] contiguous, zeroed.
template <typename T>
inline __attribute__((always_inline)) void weigh_values(const T* probs, int64_t rows, int64_t s, const T* v, int64_t v_stride,
                                                        int64_t dv, T* out) {
  for (int64_t j = 0; j < s; ++j) {
    const T* value = v + j * v_stride;
    for (int64_t r = 0; r < rows; ++r) {
      const T p = probs[r * s + j];
      T* o = out + r * dv;
      for (int64_t e = 0; e < dv; ++e) o[e] += p * value[e];
    }
  }
}

// Compiled for AVX2 and for the baseline, the better one picked at load time.
__attribute__((target_clones("avx2", "default"))) void score_rows_f32(const float* q, int64_t rows, int64_t d, const float* k,
                                                                      int64_t k_stride, int64_t s, const bool* blocked,
                                                                      float scale, float lowest, float* scores) {
  score_rows(q, rows, d, k, k_stride, s, blocked, scale, lowest, scores);
}
__attribute__((target_clones("avx2", "default"))) void score_rows_f64(const double* q, int64_t rows, int64_t d, const double* k,
                                                                      int64_t k_stride, int64_t s, const bool* blocked,
                                                                      double scale, double lowest, double* scores) {
  score_rows(q, rows, d, k, k_stride, s, blocked, scale, lowest, scores);
}
__attribute__((target_clones("avx2", "default"))) void weigh_values_f32(const float* probs, int64_t rows, int64_t s, const float* v,
                                                                        int64_t v_stride, int64_t dv, float* out) {
  weigh_values(probs, rows, s, v, v_stride, dv, out);
}
__attribute__((target_clones("avx2", "default"))) void weigh_values_f64(const double* probs, int64_t rows, int64_t s,
                                                                        const double* v, int64_t v_stride, int64_t dv, double* out) {
  weigh_values(probs, rows, s, v, v_stride, dv, out);
}
inline void score_rows_any(const float* q, int64_t rows, int64_t d, const float* k, int64_t k_stride, int64_t s,
                           const bool* blocked, float scale, float lowest, float* scores) {
  score_rows_f32(q, rows, d, k, k_stride, s, blocked, scale, lowest, scores);
}
inline void score_rows_any(const double* q, int64_t rows, int64_t d, const double* k, int64_t k_stride, int64_t s,
                           const bool* blocked, double scale, double lowest, double* scores) {
  score_rows_f64(q, rows, d, k, k_stride, s, blocked, scale, lowest, scores);
}
inline void weigh_values_any(const float* probs, int64_t rows, int64_t s, const float* v, int64_t v_stride, int64_t dv, float* out) {
  weigh_values_f32(probs, rows, s, v, v_stride, dv, out);
}
inline void weigh_values_any(const double* probs, int64_t rows, int64_t s, const double* v, int64_t v_stride, int64_t dv,
                             double* out) {
  weigh_values_f64(probs, rows, s, v, v_stride, dv, out);
}

// The single-query attention of a decode step, for every (sequence, key head) pair: q [B, G, R, 1, D],
// k [B, G, 1, S, D], v [B, G, 1, S, Dv] read in place (each key and value row contiguous, rows at any
// stride: the cache as it lies), blocked [B, 1, 1, 1, S] or undefined. The general path runs one
// small gemm per pair inside bmm, with a select and its bookkeeping each (18,000 per step of the
// dense 100M model at batch 64); here each pair is two loops over its cache rows, and the softmax
// between them is one LibTorch op over all pairs.
template <typename T>
torch::Tensor decode_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, const torch::Tensor& blocked,
                               double scale) {
  const int64_t b = q.size(0), g = q.size(1), r = q.size(2), d = q.size(4), s = k.size(3), dv = v.size(4);
  torch::Tensor rows = q.reshape({b, g, r, d}).contiguous();  // [B, G, R, D]
  torch::Tensor scores = torch::empty({b, g, r, s}, q.options());
  torch::Tensor mask = blocked.defined() ? blocked.reshape({b, s}).contiguous() : torch::Tensor();
  const T* q_at = rows.data_ptr<T>();
  const T* k_at = k.data_ptr<T>();
  const T* v_at = v.data_ptr<T>();
  T* scores_at = scores.data_ptr<T>();
  const bool* mask_at = mask.defined() ? mask.data_ptr<bool>() : nullptr;
  const T lowest = std::numeric_limits<T>::lowest();
  at::parallel_for(0, b * g, 16, [&](int64_t begin, int64_t end) {
    for (int64_t pair = begin; pair < end; ++pair) {
      const int64_t i = pair / g, h = pair % g;
      score_rows_any(q_at + pair * r * d, r, d, k_at + i * k.stride(0) + h * k.stride(1), k.stride(3), s,
                     mask_at ? mask_at + i * s : nullptr, static_cast<T>(scale), lowest, scores_at + pair * r * s);
    }
  });
  torch::Tensor probs = torch::softmax(scores, -1);  // [B, G, R, S]
  torch::Tensor out = torch::zeros({b, g, r, 1, dv}, q.options());
  const T* probs_at = probs.data_ptr<T>();
  T* out_at = out.data_ptr<T>();
  at::parallel_for(0, b * g, 16, [&](int64_t begin, int64_t end) {
    for (int64_t pair = begin; pair < end; ++pair) {
      const int64_t i = pair / g, h = pair % g;
      weigh_values_any(probs_at + pair * r * s, r, s, v_at + i * v.stride(0) + h * v.stride(1), v.stride(3), dv,
                       out_at + pair * r * dv);
    }
  });
  return out;
}

// Whether decode_attention computes this call: one query position, CPU, float32 or float64 throughout,
// no gradient wanted, key and value rows contiguous, a padding-only mask (or none).
bool takes_decode_kernel(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, const torch::Tensor& blocked) {
  if (q.size(3) != 1 || !q.device().is_cpu() || !k.device().is_cpu() || !v.device().is_cpu()) return false;
  const auto type = q.scalar_type();
  if ((type != torch::kFloat && type != torch::kDouble) || k.scalar_type() != type || v.scalar_type() != type) return false;
  if (torch::GradMode::is_enabled() && (q.requires_grad() || k.requires_grad() || v.requires_grad())) return false;
  if (k.stride(4) != 1 || v.stride(4) != 1) return false;
  if (blocked.defined()) {
    const bool padding_only = blocked.dim() == 5 && blocked.size(0) == q.size(0) && blocked.size(1) == 1 && blocked.size(2) == 1 &&
                              blocked.size(3) == 1 && blocked.size(4) == k.size(3) && blocked.scalar_type() == torch::kBool;
    if (!padding_only) return false;
  }
  return true;
}

}  // namespace

torch::Tensor causal_padding_mask(const torch::Tensor& attention_mask, int64_t past, int64_t t) {
  // Query i sits at absolute position past + i and sees keys 0..past + i that are not padding.
  const int64_t s = attention_mask.size(1);
  auto long_opts = torch::TensorOptions().dtype(torch::kLong).device(attention_mask.device());
  torch::Tensor causal = torch::arange(s, long_opts).unsqueeze(0) <= (torch::arange(t, long_opts) + past).unsqueeze(1);
  return (causal.unsqueeze(0).unsqueeze(0) & attention_mask.unsqueeze(1).unsqueeze(2)).logical_not();  // [B, 1, t, S]
}

torch::Tensor blocked_keys(const torch::Tensor& attention_mask, int64_t past, int64_t t) {
  // Fast path (single-token attention mask) for causal_padding_mask. When: t == 1, a decode step. The
  // one new query sits after every key, so causality hides nothing and only padding is blocked: the
  // padding mask alone, [B, 1, 1, S], equals the general one. On the CPU a step without padding
  // returns no mask at all (attention then skips masking); on a GPU the padding check would cost a
  // device sync, so the padding mask is always returned there. Parity test:
  // tests/policy_fast_paths.cpp ("fast path: single-token attention mask").
  if (t == 1) {
    torch::Tensor padding = attention_mask.logical_not();  // [B, S]
    if (attention_mask.device().is_cpu() && !padding.any().item<bool>()) return {};
    return padding.unsqueeze(1).unsqueeze(2);
  }
  return causal_padding_mask(attention_mask, past, t);
}

torch::Tensor masked_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                               const torch::Tensor& blocked, const ScalarConstant& scale) {
  TORCH_CHECK(q.dim() == 5 && k.dim() == 5 && v.dim() == 5 && k.size(2) == 1 && v.size(2) == 1,
              "masked_attention: need q [B, G, R, T, D], k [B, G, 1, S, D], v [B, G, 1, S, Dv]; got ", q.sizes(), ", ",
              k.sizes(), ", ", v.sizes());
  // Fast path (decode-step attention kernel) for the bmm path below: one query position without
  // autograd. Parity test: tests/policy_fast_paths.cpp ("fast path: decode-step attention kernel").
  if (takes_decode_kernel(q, k, v, blocked)) {
    const double factor = scale.like(q).item<double>();
    return q.scalar_type() == torch::kDouble ? decode_attention<double>(q, k, v, blocked, factor)
                                             : decode_attention<float>(q, k, v, blocked, factor);
  }
  auto compute = q.scalar_type() == torch::kDouble ? torch::kDouble : torch::kFloat;
  const int64_t b = q.size(0), g = q.size(1), r = q.size(2), t = q.size(3), s = k.size(3);
  // The R query heads of a group read the same key and value head: fold them into the query rows, so
  // keys and values enter one batched matmul as they are instead of being broadcast (copied) R times.
  // bmm rather than matmul: the shapes are known, and matmul's broadcasting logic costs more than the
  // product itself for a decode step.
  torch::Tensor rows = q.to(compute).reshape({b * g, r * t, q.size(4)});
  torch::Tensor keys = k.to(compute).reshape({b * g, s, k.size(4)});
  torch::Tensor scores = torch::bmm(rows, keys.transpose(1, 2)).mul_(scale.like(rows));  // [B*G, R*T, S]
  if (blocked.defined()) {
    // The lowest finite value rather than -inf: a query with no visible key (a padding position) then
    // gets a uniform distribution instead of NaNs that would poison gradients through 0·NaN.
    double lowest = compute == torch::kDouble ? std::numeric_limits<double>::lowest()
                                              : static_cast<double>(std::numeric_limits<float>::lowest());
    scores = scores.view({b, g, r, t, s}).masked_fill(blocked, lowest);
  }
  torch::Tensor probs = torch::softmax(scores, -1).to(v.scalar_type()).view({b * g, r * t, s});
  return torch::bmm(probs, v.reshape({b * g, s, v.size(4)})).view({b, g, r, t, v.size(4)});
}

}  // namespace grpo
