#include "policy/token_logprobs.h"

namespace grpo {

torch::Tensor logprobs_from_hidden(CausalLM& model, const torch::Tensor& hidden, const torch::Tensor& targets,
                                   const LogprobOptions& options, torch::Tensor* entropy) {
  const int64_t t = hidden.size(1), chunk = std::max<int64_t>(options.chunk_positions, 1);
  std::vector<torch::Tensor> pieces, entropies;
  for (int64_t start = 0; start < t; start += chunk) {
    const int64_t n = std::min(chunk, t - start);
    torch::Tensor logits = model->logits(hidden.narrow(1, start, n)).to(torch::kFloat);  // [B, n, V]
    if (options.temperature != 1.0) logits = logits / options.temperature;
    torch::Tensor target = targets.narrow(1, start, n).unsqueeze(-1);
    // log_softmax(x)[y] = x[y] - logsumexp(x): avoids materialising a second [B, n, V] tensor.
    torch::Tensor lse = torch::logsumexp(logits, -1);
    pieces.push_back(logits.gather(-1, target).squeeze(-1) - lse);
    // H = -Σ p log p = logsumexp(x) - Σ p x.
    if (entropy) entropies.push_back(lse - (torch::softmax(logits, -1) * logits).sum(-1));
  }
  if (entropy) *entropy = torch::cat(entropies, 1);
  return torch::cat(pieces, 1);
}

torch::Tensor token_logprobs(CausalLM& model, const torch::Tensor& ids, const torch::Tensor& attention_mask,
                             const LogprobOptions& options) {
  TORCH_CHECK(ids.dim() == 2 && ids.size(1) >= 2, "token_logprobs: ids must be [B, T] with T >= 2, got ", ids.sizes());
  const int64_t t = ids.size(1);
  ModelInputs in;
  in.input_ids = ids.narrow(1, 0, t - 1);
  if (attention_mask.defined()) in.attention_mask = attention_mask.narrow(1, 0, t - 1);
  in.routing = options.routing;
  torch::Tensor hidden = model->forward_hidden(in).hidden;
  return logprobs_from_hidden(model, hidden, ids.narrow(1, 1, t - 1), options);
}

}  // namespace grpo
