#include "rollout/stop_conditions.h"

#include <algorithm>

namespace grpo {

const char* to_string(FinishReason reason) { return reason == FinishReason::Stop ? "stop" : "length"; }

CompletionText::CompletionText(const Tokenizer* tokenizer, const StopConditions* stop) : stop_(stop) {
  if (tokenizer) decoder_.emplace(*tokenizer, /*skip_special=*/true);
}

std::optional<FinishReason> CompletionText::push(int32_t token, int64_t count) {
  std::optional<FinishReason> reason = stop_reason(token, count);
  if (reason) {
    // The held-back tail of an incomplete character ends the text, unless a stop string cut it.
    if (decoder_ && !stopped_by_string_) text_ += decoder_->finish();
    finished_ = true;
  }
  return reason;
}

std::optional<FinishReason> CompletionText::stop_reason(int32_t token, int64_t count) {
  if (decoder_) {
    const size_t before = text_.size();
    text_ += decoder_->push(token);
    // A stop string can only end inside the new text: search from where it could have started.
    size_t longest = 0;
    for (const std::string& s : stop_->stop_strings) longest = std::max(longest, s.size());
    const size_t from = before >= longest ? before - longest + 1 : 0;
    size_t best = std::string::npos, best_len = 0;
    for (const std::string& s : stop_->stop_strings) {
      if (s.empty()) continue;
      size_t at = text_.find(s, from);
      if (at != std::string::npos && at < best) best = at, best_len = s.size();
    }
    if (best != std::string::npos) {
      text_.resize(best + (stop_->keep_stop_string ? best_len : 0));
      stopped_by_string_ = true;
      return FinishReason::Stop;
    }
  }
  if (std::find(stop_->stop_ids.begin(), stop_->stop_ids.end(), token) != stop_->stop_ids.end()) return FinishReason::Stop;
  if (count >= stop_->max_new_tokens) return FinishReason::Length;
  return std::nullopt;
}

std::string CompletionText::take_text() {
  if (decoder_ && !finished_) text_ += decoder_->finish();
  finished_ = true;
  return std::move(text_);
}

std::string CompletionText::take_delta() {
  size_t end = text_.size();
  if (!finished_) {
    // The longest tail that is a proper prefix of a stop string waits for the tokens that decide it.
    size_t hold = 0;
    for (const std::string& s : stop_->stop_strings)
      for (size_t k = std::min(s.size() - (s.empty() ? 0 : 1), end - std::min(end, delivered_)); k > hold; --k)
        if (text_.compare(end - k, k, s, 0, k) == 0) {
          hold = k;
          break;
        }
    end -= hold;
  }
  if (end <= delivered_) return {};
  std::string delta = text_.substr(delivered_, end - delivered_);
  delivered_ = end;
  return delta;
}

}  // namespace grpo
