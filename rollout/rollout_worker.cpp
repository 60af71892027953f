#include "rollout/rollout_worker.h"

#include <fmt/core.h>

#include <stdexcept>

namespace grpo {

RolloutWorker::RolloutWorker(CausalLM policy, const Tokenizer* tokenizer, RolloutOptions options, BatchSource source,
                             int64_t run_ahead)
    : policy_(std::move(policy)), tokenizer_(tokenizer), options_(std::move(options)), source_(std::move(source)),
      run_ahead_(run_ahead) {
  if (run_ahead_ < 0) throw std::invalid_argument(fmt::format("rollout worker: run_ahead must be >= 0, got {}", run_ahead_));
  RolloutEngine check(policy_, tokenizer_, options_);  // validates the options here, on the caller's thread
  if (run_ahead_ > 0) {
    policy_ = clone_weights(policy_);
    thread_ = std::thread([this] { run(); });
  }
}

RolloutWorker::~RolloutWorker() {
  {
    std::lock_guard<std::mutex> lock(queue_mutex_);
    stopping_ = true;
  }
  queue_changed_.notify_all();
  if (thread_.joinable()) thread_.join();
}

std::optional<SampledBatch> RolloutWorker::sample_next(RolloutEngine& engine, int64_t version) {
  if (source_done_) return std::nullopt;
  std::optional<RolloutBatch> batch = source_();
  if (!batch) {
    source_done_ = true;
    return std::nullopt;
  }
  const int64_t index = next_index_++;
  if (!batch->records.empty() && batch->records.size() != batch->requests.size())
    throw std::invalid_argument(fmt::format("rollout worker: batch {} has {} records for {} requests", index,
                                            batch->records.size(), batch->requests.size()));
  SampledBatch out;
  out.index = index;
  out.policy_version = version;
  std::vector<Completion> completions = engine.generate(batch->requests);
  out.stats = engine.stats();
  out.groups.resize(batch->requests.size());
  for (size_t i = 0; i < out.groups.size(); ++i) {
    out.groups[i].request_index = static_cast<int64_t>(i);
    if (!batch->records.empty()) out.groups[i].record = std::move(batch->records[i]);
  }
  for (Completion& c : completions) out.groups[c.request_index].completions.push_back(std::move(c));
  return out;
}

void RolloutWorker::run() {
  RolloutEngine engine(policy_, tokenizer_, options_);
  while (true) {
    {
      std::unique_lock<std::mutex> lock(queue_mutex_);
      queue_changed_.wait(lock, [&] { return stopping_ || static_cast<int64_t>(queue_.size()) < run_ahead_; });
      if (stopping_) return;
    }
    Item item;
    try {
      std::lock_guard<std::mutex> weights(weights_mutex_);
      item.batch = sample_next(engine, version_);
    } catch (...) {
      item.error = std::current_exception();
    }
    const bool last = !item.batch || item.error;
    {
      std::lock_guard<std::mutex> lock(queue_mutex_);
      queue_.push_back(std::move(item));
      peak_queued_ = std::max(peak_queued_, static_cast<int64_t>(queue_.size()));
      producer_finished_ = last;
    }
    queue_changed_.notify_all();
    if (last) return;  // nothing comes after the end of the data or an error
  }
}

std::optional<SampledBatch> RolloutWorker::next() {
  if (run_ahead_ == 0) {
    RolloutEngine engine(policy_, tokenizer_, options_);
    return sample_next(engine, version_);
  }
  Item item;
  {
    std::unique_lock<std::mutex> lock(queue_mutex_);
    queue_changed_.wait(lock, [&] { return !queue_.empty(); });
    // The end marker and errors stay queued, so every later call sees them too.
    if (queue_.front().batch) {
      item = std::move(queue_.front());
      queue_.pop_front();
    } else {
      item.error = queue_.front().error;
    }
  }
  queue_changed_.notify_all();
  if (item.error) std::rethrow_exception(item.error);
  return std::move(item.batch);
}

void RolloutWorker::update_weights(const CausalLM& policy) {
  std::lock_guard<std::mutex> weights(weights_mutex_);
  if (run_ahead_ > 0) copy_weights(policy, policy_);
  ++version_;
}

int64_t RolloutWorker::version() const { return version_.load(); }

int64_t RolloutWorker::queued() const {
  std::lock_guard<std::mutex> lock(queue_mutex_);
  int64_t n = 0;
  for (const Item& item : queue_) n += item.batch.has_value();
  return n;
}

int64_t RolloutWorker::peak_queued() const {
  std::lock_guard<std::mutex> lock(queue_mutex_);
  return peak_queued_;
}

}  // namespace grpo
