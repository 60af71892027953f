#pragma once
// RolloutWorker: turns batches of prompts (and the data records they came from) into groups of G
// samples ready for rewards, optionally running ahead of the trainer.
//
//  - run_ahead = 0 (the default): next() samples the next batch on the caller's thread with the
//    caller's policy — exactly RolloutEngine::generate, nothing overlaps.
//  - run_ahead = N > 0: a thread with its own copy of the weights samples up to N batches ahead of the
//    trainer into a bounded queue, so sampling overlaps the update. The trainer publishes its weights
//    with update_weights() after each update. Each batch records the policy version that sampled it: a
//    batch taken by a trainer that has published v versions was sampled by a version >= v - N (its
//    completions' log-probs are that version's, which is what the importance ratio needs).
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <thread>
#include <vector>

#include "policy/causal_lm.h"
#include "policy/tokenizer/tokenizer.h"
#include "rollout/rollout_engine.h"

namespace grpo {

// One batch of prompts from the data source.
struct RolloutBatch {
  std::vector<PromptRequest> requests;
  std::vector<nlohmann::json> records;  // empty, or one per request: passed through to the groups
};

// The G samples of one prompt.
struct SampledGroup {
  int64_t request_index = 0;            // within its batch
  nlohmann::json record;                // the request's record (null when the batch had none)
  std::vector<Completion> completions;  // in sample order
};

struct SampledBatch {
  int64_t index = 0;           // 0, 1, 2, ... in the order the source produced batches
  int64_t policy_version = 0;  // update_weights() calls published before this batch was sampled
  std::vector<SampledGroup> groups;  // in request order
  RolloutStats stats;
};

class RolloutWorker {
 public:
  // Returns the next batch, or nullopt when the data is exhausted. With run_ahead > 0 it is called on
  // the worker's thread, one call at a time.
  using BatchSource = std::function<std::optional<RolloutBatch>()>;

  // run_ahead > 0 copies the policy's weights (clone_weights: one more model in memory) and starts the
  // thread. The tokenizer must outlive the worker. Throws std::invalid_argument for run_ahead < 0 or
  // invalid rollout options.
  RolloutWorker(CausalLM policy, const Tokenizer* tokenizer, RolloutOptions options, BatchSource source,
                int64_t run_ahead = 0);
  ~RolloutWorker();  // stops the thread after the batch in progress
  RolloutWorker(const RolloutWorker&) = delete;
  RolloutWorker& operator=(const RolloutWorker&) = delete;

  // The next batch's groups, waiting for it if needed; nullopt once the source is exhausted. Rethrows
  // an error the source or the engine raised for that batch (a records/requests size mismatch is
  // std::invalid_argument).
  std::optional<SampledBatch> next();

  // Publishes the policy's current weights as the next version. run_ahead 0: the engine already samples
  // from the live policy, so this only counts. Otherwise the weights are copied into the worker's
  // model, after the batch in progress (if any) finishes.
  void update_weights(const CausalLM& policy);

  int64_t version() const;      // versions published so far
  int64_t queued() const;       // batches sampled and not yet taken
  int64_t peak_queued() const;  // the most ever waiting at once (never more than run_ahead)
  int64_t run_ahead() const { return run_ahead_; }

 private:
  // Samples one batch from the source with `engine`; nullopt at the end of the data.
  std::optional<SampledBatch> sample_next(RolloutEngine& engine, int64_t version);
  void run();  // the thread's loop

  struct Item {
    std::optional<SampledBatch> batch;  // nullopt: end of data
    std::exception_ptr error;
  };

  CausalLM policy_;  // the caller's model (run_ahead 0) or the worker's copy
  const Tokenizer* tokenizer_;
  RolloutOptions options_;
  BatchSource source_;
  const int64_t run_ahead_;
  int64_t next_index_ = 0;
  bool source_done_ = false;

  std::mutex weights_mutex_;  // held while sampling and while copying weights in
  std::atomic<int64_t> version_{0};

  mutable std::mutex queue_mutex_;
  std::condition_variable queue_changed_;
  std::deque<Item> queue_;
  int64_t peak_queued_ = 0;
  bool stopping_ = false;
  bool producer_finished_ = false;
  std::thread thread_;
};

}  // namespace grpo
