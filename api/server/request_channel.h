#pragma once
// RequestChannel: how one HTTP request waits for its samples. The decode loop's thread pushes the
// request's tokens and completions into it (GenerationSink); the handler's thread takes them out as
// they come, to stream them or to answer once all are in. The loop never waits for the handler: a slow
// client only lets events pile up here, at most one per token of its own request.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "rollout/generation_request.h"

namespace grpo::api {

struct ChannelEvent {
  enum class Kind { Token, Completion, Error } kind = Kind::Token;
  SampledToken token;
  Completion completion;
  std::string error;
};

class RequestChannel : public GenerationSink {
 public:
  explicit RequestChannel(int64_t samples) : samples_(samples) {}

  void on_token(const SampledToken& token) override;
  void on_completion(Completion completion) override;
  void on_error(const std::string& message) override;
  bool cancelled() const override { return cancelled_.load(); }

  // The client has gone: the decode loop drops the request at its next step.
  void cancel() { cancelled_ = true; }
  // The events that arrived, waiting up to `timeout` for the first; empty after a timeout.
  std::vector<ChannelEvent> wait(std::chrono::milliseconds timeout);
  // Every sample completed, or an error came.
  bool finished() const;

 private:
  const int64_t samples_;
  std::atomic<bool> cancelled_{false};
  mutable std::mutex mutex_;
  std::condition_variable arrived_;
  std::vector<ChannelEvent> events_;
  int64_t completed_ = 0;
  bool failed_ = false;
};

}  // namespace grpo::api
