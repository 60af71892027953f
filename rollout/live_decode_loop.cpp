#include "rollout/live_decode_loop.h"

#include <fmt/core.h>

#include <chrono>
#include <exception>
#include <stdexcept>

#include "rollout/decode_batch.h"
#include "rollout/memory_budget.h"

namespace grpo {

LiveDecodeLoop::LiveDecodeLoop(CausalLM model, const Tokenizer* tokenizer, RolloutOptions options, int64_t max_waiting)
    : model_(std::move(model)), tokenizer_(tokenizer), options_(std::move(options)), max_waiting_(max_waiting) {
  if (options_.max_batch_rows < 1) throw std::invalid_argument("rollout: max_batch_rows must be >= 1");
  if (max_waiting_ < 0) throw std::invalid_argument("rollout: max_waiting must be >= 0");
  model_->eval();
  thread_ = std::thread([this] { run(); });
}

LiveDecodeLoop::~LiveDecodeLoop() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    accepting_ = false;
    quit_ = true;
    cancel_ = true;
    cancel_message_ = "the decode loop is shutting down";
  }
  wake_.notify_all();
  thread_.join();
}

LiveDecodeLoop::Submitted LiveDecodeLoop::submit(GenerationRequest r) {
  const ModelConfig& config = model_->config();
  if (!r.sink) throw std::invalid_argument("rollout: a live request needs a sink");
  if (r.prompt.prompt_ids.empty()) throw std::invalid_argument("rollout: empty prompt");
  if (r.prompt.num_samples < 1) throw std::invalid_argument(fmt::format("rollout: {} samples asked", r.prompt.num_samples));
  if (r.stop.max_new_tokens < 1) throw std::invalid_argument("rollout: max_new_tokens must be >= 1");
  if (!r.stop.stop_strings.empty() && !tokenizer_) throw std::invalid_argument("rollout: stop strings need a tokenizer");
  for (int32_t id : r.prompt.prompt_ids)
    if (id < 0 || id >= config.vocab_size)
      throw std::invalid_argument(fmt::format("rollout: token id {} outside the vocabulary [0, {})", id, config.vocab_size));
  if (options_.memory_budget_bytes > 0) {
    const CacheBudget budget{options_.memory_budget_bytes,
                             cache_bytes_per_token(config, model_->model->embed_tokens->weight.element_size())};
    const int64_t length = static_cast<int64_t>(r.prompt.prompt_ids.size()) + r.stop.max_new_tokens;
    if (!budget.fits(r.prompt.num_samples, length))
      throw MemoryBudgetExceeded(fmt::format("rollout: {} rows x {} positions exceed the memory budget of {}: at most {} rows "
                                             "of that length fit",
                                             r.prompt.num_samples, length, format_bytes(budget.budget_bytes),
                                             budget.max_rows(length)));
  }
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!accepting_) return Submitted::Stopped;
    if (static_cast<int64_t>(inbox_.size()) + waiting_.load() >= max_waiting_) return Submitted::QueueFull;
    inbox_.push_back(std::move(r));
    busy_ = true;
  }
  wake_.notify_all();
  return Submitted::Queued;
}

void LiveDecodeLoop::stop_accepting() {
  std::lock_guard<std::mutex> lock(mutex_);
  accepting_ = false;
}

bool LiveDecodeLoop::wait_idle(int64_t timeout_ms) {
  std::unique_lock<std::mutex> lock(mutex_);
  return idle_.wait_for(lock, std::chrono::milliseconds(timeout_ms), [&] { return !busy_ && inbox_.empty(); });
}

void LiveDecodeLoop::cancel_all(const std::string& message) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    cancel_ = true;
    cancel_message_ = message;
  }
  wake_.notify_all();
}

void LiveDecodeLoop::run() {
  c10::InferenceMode inference;
  RolloutStats stats;
  DecodeBatch batch(model_, tokenizer_, options_, stats);
  for (;;) {
    std::deque<GenerationRequest> cancelled;
    std::string cancel_message;
    bool cancelling = false;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      busy_ = !inbox_.empty() || batch.has_work();
      if (!busy_) idle_.notify_all();
      wake_.wait(lock, [&] { return quit_ || cancel_ || !inbox_.empty() || batch.has_work(); });
      if (cancel_) {
        cancelled.swap(inbox_);
        cancel_message = cancel_message_;
        cancel_ = false;
        cancelling = true;
      } else {
        // Requests that arrived since the last step join the queue; they are admitted below as soon
        // as their rows fit beside the live ones.
        while (!inbox_.empty()) {
          batch.enqueue(std::move(inbox_.front()), next_index_++);
          inbox_.pop_front();
        }
        waiting_ = batch.waiting();  // submit() counts the inbox and these: no gap between the two
      }
    }
    if (cancelling) {
      batch.fail_all(cancel_message);
      for (GenerationRequest& r : cancelled) r.sink->on_error(cancel_message);
    } else {
      try {
        batch.admit();   // waiting prompts into free rows: prefill, first tokens
        batch.step();    // one decode forward of the live rows
        batch.sample();  // their next tokens and log-probs, streamed to the sinks
        batch.retire();  // finished and cancelled rows out
      } catch (const std::exception& e) {
        batch.fail_all(fmt::format("decoding failed: {}", e.what()));
      }
    }
    {
      std::lock_guard<std::mutex> lock(mutex_);
      waiting_ = batch.waiting();
      live_rows_ = batch.live_rows();
      if (quit_ && inbox_.empty() && !batch.has_work()) {
        busy_ = false;
        idle_.notify_all();
        return;
      }
    }
  }
}

}  // namespace grpo
