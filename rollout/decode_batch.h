#pragma once
// DecodeBatch: the samples RolloutEngine::generate decodes together, and the four steps of its loop
//
//   while (batch.has_work()) { batch.admit(); batch.step(); batch.sample(); batch.retire(); }
//
//   admit   prefills waiting prompts that fit into free rows: one prefill per prompt, whose cache rows
//           are copied to its G samples; each new row's first token is sampled from the prefill's
//           logits, and the new rows join the batch right-aligned with it (masked on the left);
//   step    one decode forward of every live row's pending token through the shared KV cache;
//   sample  every live row's next token and its behaviour log-prob, from that forward's logits;
//   retire  finished rows leave the batch and the cache and their completions are emitted; leading
//           cache positions that no remaining row attends to are trimmed away.
//
// A step with nothing to do does nothing (step, sample and retire on an empty batch, admit with no
// waiting prompt that fits). Admission ends with a retire of its own, so that rows finished by their
// first token never enter a decode forward.
#include <torch/torch.h>

#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <vector>

#include "policy/causal_lm.h"
#include "policy/kv_cache.h"
#include "policy/tokenizer/tokenizer.h"
#include "rollout/memory_budget.h"
#include "rollout/rollout_engine.h"
#include "rollout/stop_conditions.h"

namespace grpo {

class DecodeBatch {
 public:
  // `requests` must be valid (RolloutEngine::generate checks them) and, like `options` and
  // `tokenizer`, outlive the batch. The model runs as it is: the caller puts it in eval mode and holds
  // an inference-mode guard. Counts (prompts, tokens, decode steps, peak rows and cache bytes) are
  // added to `stats`; phase times are the caller's.
  DecodeBatch(CausalLM model, const Tokenizer* tokenizer, const RolloutOptions& options,
              const std::vector<PromptRequest>& requests, RolloutStats& stats);

  // A prompt still waits or a sample is still being decoded.
  bool has_work() const { return !waiting_.empty() || !rows_.empty(); }

  void admit();
  void step();
  void sample();
  void retire();

  // Every completion, ordered by (request, sample); complete once has_work() is false.
  std::vector<Completion> take_completions() { return std::move(completions_); }

 private:
  // One sample being generated: a row of the batch.
  struct Row {
    int64_t request = 0, sample = 0;
    uint64_t seed = 0;
    int64_t next_position = 0;  // position id of the next token fed to the model
    int32_t pending_token = 0;  // sampled, not yet fed
    std::vector<int32_t> completion;
    std::vector<float> logprobs;
    std::unique_ptr<CompletionText> text;
    std::optional<FinishReason> finish;  // set by the token that ends the sample
    // Experts per consumed position, [n_moe][position][k] flattened per layer.
    std::vector<std::vector<int64_t>> experts;
  };

  // Takes the waiting requests that fit beside the live rows off the queue; `longest` is set to their
  // longest prompt.
  std::vector<int64_t> take_admissible(int64_t& longest);
  // Samples one token for each of `rows` from logits [R, V] and marks the rows it finishes.
  void sample_rows(std::vector<Row>& rows, const torch::Tensor& logits);
  // Appends to rows[r] the experts of trace row source[r], columns [first[r], first[r] + count[r]).
  void append_experts(std::vector<Row>& rows, const RoutingTrace& trace, const std::vector<int64_t>& source,
                      const std::vector<int64_t>& first, const std::vector<int64_t>& count) const;
  // Joins rows with their own cache and mask [R, S'] to the batch, aligned on the right.
  void merge(std::vector<Row>& rows, KVCache cache, torch::Tensor mask);
  // The completion of a finished row.
  void emit(Row& row);

  CausalLM model_;
  const Tokenizer* tokenizer_;
  const RolloutOptions& options_;
  const std::vector<PromptRequest>& requests_;
  RolloutStats& stats_;
  const bool record_;  // record experts (MoE models with record_experts)
  const torch::Device device_;
  const CacheBudget budget_;

  std::deque<int64_t> waiting_;        // requests not admitted yet, in order
  std::vector<Row> rows_;
  std::optional<KVCache> cache_;       // one row per live sample; unset while the batch is empty
  torch::Tensor mask_;                 // [R, S] bool, S = cache length: the positions each row attends to
  torch::Tensor logits_;               // [R, V] of the last step, until sampled
  std::vector<int64_t> first_output_;  // completions_ index of request i's first sample
  std::vector<Completion> completions_;
};

}  // namespace grpo
