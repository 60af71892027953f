#include "api/reasoning_split.h"

#include <algorithm>

namespace grpo::api {
namespace {

bool is_space(char c) { return c == ' ' || c == '\n' || c == '\t' || c == '\r'; }

// Length of the longest tail of `text` that is a proper prefix of `marker`.
size_t partial_marker_tail(std::string_view text, std::string_view marker) {
  for (size_t k = std::min(text.size(), marker.empty() ? 0 : marker.size() - 1); k > 0; --k)
    if (text.substr(text.size() - k) == marker.substr(0, k)) return k;
  return 0;
}

}  // namespace

bool prompt_opens_reasoning(std::string_view prompt, const ReasoningMarkers& markers) {
  const size_t start = prompt.rfind(markers.start);
  if (start == std::string_view::npos) return false;
  const size_t end = prompt.rfind(markers.end);
  return end == std::string_view::npos || end < start;
}

ReasoningSplitter::ReasoningSplitter(ReasoningMarkers markers, bool starts_in_reasoning)
    : markers_(std::move(markers)), state_(starts_in_reasoning ? State::Reasoning : State::Undecided) {}

ReasoningParts ReasoningSplitter::push(std::string_view text) {
  pending_.append(text);
  ReasoningParts out;
  for (;;) {
    switch (state_) {
      case State::Undecided: {
        if (markers_.start.empty()) {
          state_ = State::Content;
          continue;
        }
        size_t first = 0;
        while (first < pending_.size() && is_space(pending_[first])) ++first;
        std::string_view rest = std::string_view(pending_).substr(first);
        if (rest.size() >= markers_.start.size() && rest.substr(0, markers_.start.size()) == markers_.start) {
          pending_.erase(0, first + markers_.start.size());
          state_ = State::Reasoning;
          continue;
        }
        if (rest.size() < markers_.start.size() && std::string_view(markers_.start).substr(0, rest.size()) == rest)
          return out;  // still possibly the start marker
        state_ = State::Content;
        continue;
      }
      case State::Reasoning: {
        const size_t at = pending_.find(markers_.end);
        if (at != std::string::npos) {
          out.reasoning += pending_.substr(0, at);
          pending_.erase(0, at + markers_.end.size());
          state_ = State::ContentStart;
          continue;
        }
        const size_t hold = partial_marker_tail(pending_, markers_.end);
        out.reasoning += pending_.substr(0, pending_.size() - hold);
        pending_.erase(0, pending_.size() - hold);
        return out;
      }
      case State::ContentStart: {
        size_t first = 0;
        while (first < pending_.size() && is_space(pending_[first])) ++first;
        pending_.erase(0, first);
        if (pending_.empty()) return out;
        state_ = State::Content;
        continue;
      }
      case State::Content:
        out.content += pending_;
        pending_.clear();
        return out;
    }
  }
}

ReasoningParts ReasoningSplitter::finish() {
  ReasoningParts out;
  if (state_ == State::Reasoning)
    out.reasoning = std::move(pending_);
  else if (state_ != State::ContentStart)
    out.content = std::move(pending_);
  pending_.clear();
  return out;
}

ReasoningParts split_reasoning(std::string_view text, const ReasoningMarkers& markers, bool starts_in_reasoning) {
  ReasoningSplitter splitter(markers, starts_in_reasoning);
  ReasoningParts a = splitter.push(text);
  ReasoningParts b = splitter.finish();
  return {a.reasoning + b.reasoning, a.content + b.content};
}

}  // namespace grpo::api
