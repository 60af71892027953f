#include <limits>

#include "policy/forward_context.h"

namespace grpo {

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
