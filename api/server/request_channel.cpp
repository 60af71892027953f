#include "api/server/request_channel.h"

#include <utility>

namespace grpo::api {

void RequestChannel::on_token(const SampledToken& token) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    ChannelEvent e;
    e.kind = ChannelEvent::Kind::Token;
    e.token = token;
    events_.push_back(std::move(e));
  }
  arrived_.notify_all();
}

void RequestChannel::on_completion(Completion completion) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    ChannelEvent e;
    e.kind = ChannelEvent::Kind::Completion;
    e.completion = std::move(completion);
    events_.push_back(std::move(e));
    ++completed_;
  }
  arrived_.notify_all();
}

void RequestChannel::on_error(const std::string& message) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    ChannelEvent e;
    e.kind = ChannelEvent::Kind::Error;
    e.error = message;
    events_.push_back(std::move(e));
    failed_ = true;
  }
  arrived_.notify_all();
}

std::vector<ChannelEvent> RequestChannel::wait(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mutex_);
  arrived_.wait_for(lock, timeout, [&] { return !events_.empty(); });
  std::vector<ChannelEvent> out;
  out.swap(events_);
  return out;
}

bool RequestChannel::finished() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return failed_ || completed_ == samples_;
}

}  // namespace grpo::api
