#include "rl/sequence_batch.h"

#include <stdexcept>

namespace grpo {

namespace {

// Applies `f` to every tensor field (undefined ones stay undefined).
template <typename F>
SequenceBatch map_tensors(const SequenceBatch& batch, F f) {
  auto apply = [&](const torch::Tensor& t) { return t.defined() ? f(t) : t; };
  SequenceBatch out = batch;
  for (torch::Tensor* t : {&out.input_ids, &out.attention_mask, &out.targets, &out.completion_mask, &out.rollout_logprobs,
                           &out.advantages, &out.ref_logprobs})
    *t = apply(*t);
  for (torch::Tensor& e : out.replay.experts) e = apply(e);
  return out;
}

}  // namespace

SequenceBatch SequenceBatch::select(const std::vector<int64_t>& index) const {
  torch::Tensor rows = torch::tensor(index, torch::kLong).to(input_ids.device());
  return map_tensors(*this, [&](const torch::Tensor& t) { return t.index_select(0, rows); });
}

SequenceBatch SequenceBatch::to(torch::Device device) const {
  return map_tensors(*this, [&](const torch::Tensor& t) { return t.to(device); });
}

SequenceBatch build_sequence_batch(const std::vector<const Completion*>& completions, const std::vector<double>& advantages,
                                   bool with_replay, bool mask_truncated) {
  if (completions.empty()) throw std::invalid_argument("build_sequence_batch: no completions");
  if (advantages.size() != completions.size()) throw std::invalid_argument("build_sequence_batch: one advantage per completion");
  const int64_t b = static_cast<int64_t>(completions.size());
  int64_t p = 0, c = 0;
  for (const Completion* x : completions) {
    p = std::max<int64_t>(p, static_cast<int64_t>(x->prompt_ids.size()));
    c = std::max<int64_t>(c, static_cast<int64_t>(x->completion_ids.size()));
  }
  const int64_t width = p + c - 1;
  SequenceBatch s;
  s.first_position = p - 1;
  s.input_ids = torch::zeros({b, width}, torch::kLong);
  s.attention_mask = torch::zeros({b, width}, torch::kBool);
  s.targets = torch::zeros({b, c}, torch::kLong);
  s.completion_mask = torch::zeros({b, c}, torch::kFloat);
  s.rollout_logprobs = torch::zeros({b, c}, torch::kFloat);
  s.advantages = torch::tensor(advantages, torch::kDouble).to(torch::kFloat);
  auto ids = s.input_ids.accessor<int64_t, 2>();
  auto mask = s.attention_mask.accessor<bool, 2>();
  auto targets = s.targets.accessor<int64_t, 2>();
  auto cmask = s.completion_mask.accessor<float, 2>();
  auto lps = s.rollout_logprobs.accessor<float, 2>();

  int64_t layers = 0, k = 0;
  if (with_replay) {
    for (const Completion* x : completions)
      if (!x->experts.defined()) throw std::invalid_argument("build_sequence_batch: routing replay needs recorded experts");
    layers = completions[0]->experts.size(0);
    k = completions[0]->experts.size(2);
    // Padding positions get experts 0..k-1: any valid choice, their outputs are masked.
    for (int64_t l = 0; l < layers; ++l)
      s.replay.experts.push_back(torch::arange(k, torch::kLong).expand({b, width, k}).contiguous());
    s.replay.mode = RoutingTrace::Mode::Replay;
  }
  for (int64_t i = 0; i < b; ++i) {
    const Completion& x = *completions[i];
    const int64_t pi = static_cast<int64_t>(x.prompt_ids.size()), ci = static_cast<int64_t>(x.completion_ids.size());
    const int64_t start = p - pi;
    for (int64_t t = 0; t < pi; ++t) ids[i][start + t] = x.prompt_ids[t], mask[i][start + t] = true;
    for (int64_t t = 0; t + 1 < ci; ++t) ids[i][p + t] = x.completion_ids[t], mask[i][p + t] = true;
    const bool counts = !(mask_truncated && x.finish_reason == FinishReason::Length);
    for (int64_t t = 0; t < ci; ++t) {
      targets[i][t] = x.completion_ids[t];
      cmask[i][t] = counts ? 1.0f : 0.0f;
      lps[i][t] = x.logprobs[t];
    }
    if (with_replay) {
      const int64_t positions = pi + ci - 1;
      if (x.experts.size(1) != positions) throw std::invalid_argument("build_sequence_batch: experts do not cover the sequence");
      for (int64_t l = 0; l < layers; ++l) s.replay.experts[l][i].narrow(0, start, positions).copy_(x.experts[l]);
    }
  }
  return s;
}

}  // namespace grpo
