#pragma once
// LiveDecodeLoop: the rollout engine's continuous batching for requests that arrive over time, as a
// server receives them. One thread owns the model and runs the DecodeBatch loop (admit, step,
// sample, retire) for as long as there is work; other threads submit requests at any moment, and a
// request that arrives mid-decode joins the running batch at the next admit. Results reach each
// request's sink on the loop's thread (generation_request.h).
//
// Bounded: at most max_waiting requests wait for rows (submit refuses more) and at most
// max_batch_rows rows decode together. A request's samples are those RolloutEngine::generate gives
// the same prompt, seed and settings (up to the float rounding of batched matmuls, which float64
// models remove).
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <utility>

#include "policy/causal_lm.h"
#include "policy/tokenizer/tokenizer.h"
#include "rollout/generation_request.h"
#include "rollout/rollout_engine.h"

namespace grpo {

class LiveDecodeLoop {
 public:
  // Starts the loop's thread. `options` gives max_batch_rows and the memory budget (its sampling and
  // stop settings are not used). The model and tokenizer must outlive the loop; nothing else may run
  // the model meanwhile.
  LiveDecodeLoop(CausalLM model, const Tokenizer* tokenizer, RolloutOptions options, int64_t max_waiting);
  // Cancels what is left and joins the thread.
  ~LiveDecodeLoop();
  LiveDecodeLoop(const LiveDecodeLoop&) = delete;
  LiveDecodeLoop& operator=(const LiveDecodeLoop&) = delete;

  enum class Submitted { Queued, QueueFull, Stopped };
  // Queues a request. Throws std::invalid_argument for an empty prompt, no samples, a token outside
  // the vocabulary, max_new_tokens < 1, stop strings without a tokenizer or no sink.
  Submitted submit(GenerationRequest request);

  // Stops taking requests; the requests already taken run to their end. wait_idle() returns once
  // they have (or after `timeout_ms`, returning false).
  void stop_accepting();
  bool wait_idle(int64_t timeout_ms);
  // Ends every waiting and live request now with on_error(message).
  void cancel_all(const std::string& message);

  int64_t waiting() const { return waiting_.load(); }   // submitted, not yet decoding
  int64_t live_rows() const { return live_rows_.load(); }
  const RolloutOptions& options() const { return options_; }

 private:
  void run();

  CausalLM model_;
  const Tokenizer* tokenizer_;
  const RolloutOptions options_;
  const int64_t max_waiting_;

  std::mutex mutex_;
  std::condition_variable wake_;  // the loop: new requests, cancellation, shutdown
  std::condition_variable idle_;  // waiters for the end of the work
  std::deque<GenerationRequest> inbox_;
  bool accepting_ = true, quit_ = false, busy_ = false;
  std::string cancel_message_;  // set by cancel_all until the loop has acted on it
  bool cancel_ = false;
  int64_t next_index_ = 0;
  std::atomic<int64_t> waiting_{0}, live_rows_{0};
  std::thread thread_;
};

}  // namespace grpo
