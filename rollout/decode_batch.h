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
// Requests carry their own sampling parameters, stop conditions and token budget
// (generation_request.h), and may be queued while the batch decodes (enqueue between steps): rows of
// requests with different sampling parameters are sampled group by group. A request whose sink says it
// is cancelled leaves the queue, or the batch at the next retire, without completions.
//
// A step with nothing to do does nothing (step, sample and retire on an empty batch, admit with no
// waiting prompt that fits). Admission ends with a retire of its own, so that rows finished by their
// first token never enter a decode forward.
#include <torch/torch.h>

#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "policy/causal_lm.h"
#include "policy/kv_cache.h"
#include "policy/tokenizer/tokenizer.h"
#include "rollout/generation_request.h"
#include "rollout/memory_budget.h"
#include "rollout/rollout_engine.h"
#include "rollout/stop_conditions.h"

namespace grpo {

class DecodeBatch {
 public:
  // The model runs as it is: the caller puts it in eval mode and holds an inference-mode guard.
  // `options` (max_batch_rows, record_experts, memory budget; its sampling and stop settings are not
  // read: each request brings its own) and `tokenizer` must outlive the batch. Counts (prompts,
  // tokens, decode steps, peak rows and cache bytes) are added to `stats`; phase times are the
  // caller's.
  DecodeBatch(CausalLM model, const Tokenizer* tokenizer, const RolloutOptions& options, RolloutStats& stats);

  // Queues a request behind the waiting ones; it joins the batch at an admit() when its rows fit. The
  // request must be valid (RolloutEngine::generate and LiveDecodeLoop::submit check them); its sink
  // receives its tokens and completions. `index` becomes Completion::request_index.
  void enqueue(GenerationRequest request, int64_t index);

  // A prompt still waits or a sample is still being decoded.
  bool has_work() const { return !waiting_.empty() || !rows_.empty(); }
  int64_t waiting() const { return static_cast<int64_t>(waiting_.size()); }
  int64_t live_rows() const { return static_cast<int64_t>(rows_.size()); }

  void admit();
  void step();
  void sample();
  void retire();

  // Ends every waiting and live request with on_error(message), leaving the batch empty (after a
  // failed step, whose state cannot be trusted).
  void fail_all(const std::string& message);

 private:
  // A request in the queue or in the batch, shared by its rows.
  struct Entry {
    GenerationRequest request;
    int64_t index = 0;
  };
  // One sample being generated: a row of the batch.
  struct Row {
    std::shared_ptr<Entry> entry;
    int64_t sample = 0;
    uint64_t seed = 0;
    int64_t next_position = 0;  // position id of the next token fed to the model
    int32_t pending_token = 0;  // sampled, not yet fed
    std::vector<int32_t> completion;
    std::vector<float> logprobs;
    std::vector<std::vector<TokenLogprob>> top_logprobs;
    std::unique_ptr<CompletionText> text;
    std::optional<FinishReason> finish;  // set by the token that ends the sample
    // Experts per consumed position, [n_moe][position][k] flattened per layer.
    std::vector<std::vector<int64_t>> experts;
  };

  // Takes the waiting requests that fit beside the live rows off the queue; `longest` is set to their
  // longest prompt and `longest_new` to their largest max_new_tokens.
  std::vector<std::shared_ptr<Entry>> take_admissible(int64_t& longest, int64_t& longest_new);
  // Samples one token for each of `rows` from logits [R, V] and marks the rows it finishes.
  void sample_rows(std::vector<Row>& rows, const torch::Tensor& logits);
  // Appends to rows[r] the experts of trace row source[r], columns [first[r], first[r] + count[r]).
  void append_experts(std::vector<Row>& rows, const RoutingTrace& trace, const std::vector<int64_t>& source,
                      const std::vector<int64_t>& first, const std::vector<int64_t>& count) const;
  // Joins rows with their own cache and mask [R, S'] to the batch, aligned on the right.
  void merge(std::vector<Row>& rows, KVCache cache, torch::Tensor mask);
  // Hands the completion of a finished row to its request's sink.
  void emit(Row& row);

  CausalLM model_;
  const Tokenizer* tokenizer_;
  const RolloutOptions& options_;
  RolloutStats& stats_;
  const bool record_;  // record experts (MoE models with record_experts)
  const torch::Device device_;
  const CacheBudget budget_;

  std::deque<std::shared_ptr<Entry>> waiting_;  // requests not admitted yet, in order
  std::vector<Row> rows_;
  std::optional<KVCache> cache_;  // one row per live sample; unset while the batch is empty
  torch::Tensor mask_;            // [R, S] bool, S = cache length: the positions each row attends to
  torch::Tensor logits_;          // [R, V] of the last step, until sampled
};

}  // namespace grpo
