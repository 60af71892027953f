#include <limits>

#include "policy/forward_context.h"

namespace grpo {

torch::Tensor masked_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                               const torch::Tensor& mask, double scale) {
  auto compute = q.scalar_type() == torch::kDouble ? torch::kDouble : torch::kFloat;
  torch::Tensor scores = torch::matmul(q.to(compute), k.to(compute).transpose(-1, -2)) * scale;
  // The lowest finite value rather than -inf: a query with no visible key (a padding position) then
  // gets a uniform distribution instead of NaNs that would poison gradients through 0·NaN.
  double lowest = compute == torch::kDouble ? std::numeric_limits<double>::lowest()
                                            : static_cast<double>(std::numeric_limits<float>::lowest());
  scores = scores.masked_fill(mask.logical_not(), lowest);
  torch::Tensor probs = torch::softmax(scores, -1).to(v.scalar_type());
  return torch::matmul(probs, v);
}

}  // namespace grpo
