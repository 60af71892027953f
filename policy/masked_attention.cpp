#include <limits>

#include "policy/forward_context.h"

namespace grpo {

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
