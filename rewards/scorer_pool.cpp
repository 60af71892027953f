#include "rewards/scorer_pool.h"

#include <atomic>
#include <exception>
#include <mutex>
#include <stdexcept>
#include <thread>

namespace grpo::rewards {

ScorerPool::ScorerPool(RuleSet rules, int threads, SandboxLimits limits) : rules_(std::move(rules)) {
  if (threads < 1) throw std::invalid_argument("ScorerPool: threads must be at least 1");
  scorers_.reserve(static_cast<std::size_t>(threads));
  for (int i = 0; i < threads; ++i) scorers_.emplace_back(rules_, limits);
  failures_.resize(rules_.rules().size());
}

ScorerPool::~ScorerPool() = default;

std::vector<SampleScore> ScorerPool::score(const std::vector<Sample>& batch) {
  std::vector<SampleScore> scores(batch.size());
  // Samples are handed out one at a time: rule costs vary by orders of magnitude (a code test next to
  // a format check), so static slices would leave threads idle.
  std::atomic<std::size_t> next{0};
  std::exception_ptr error;  // host failures only (out of host memory): rule failures are results
  std::mutex error_mutex;
  auto work = [&](RuleScorer& scorer) {
    try {
      for (std::size_t i = next++; i < batch.size(); i = next++) scores[i] = scorer.score(batch[i]);
    } catch (...) {
      std::lock_guard<std::mutex> lock(error_mutex);
      if (!error) error = std::current_exception();
      next = batch.size();
    }
  };
  const std::size_t helpers = std::min(scorers_.size(), batch.size());
  std::vector<std::thread> threads;
  for (std::size_t t = 1; t < helpers; ++t) threads.emplace_back(work, std::ref(scorers_[t]));
  work(scorers_[0]);
  for (std::thread& thread : threads) thread.join();
  if (error) std::rethrow_exception(error);

  for (const SampleScore& sample : scores) {
    for (std::size_t r = 0; r < sample.rules.size(); ++r) {
      if (!sample.rules[r].failed()) continue;
      if (failures_[r].count++ == 0) failures_[r].first_message = sample.rules[r].message;
    }
  }
  return scores;
}

}  // namespace grpo::rewards
