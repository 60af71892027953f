#include "rollout/stop_conditions.h"

#include <algorithm>

namespace grpo {

const char* to_string(FinishReason reason) { return reason == FinishReason::Stop ? "stop" : "length"; }

CompletionText::CompletionText(const Tokenizer* tokenizer, const StopConditions* stop) : stop_(stop) {
  if (tokenizer) decoder_.emplace(*tokenizer, /*skip_special=*/true);
}

std::optional<FinishReason> CompletionText::push(int32_t token, int64_t count) {
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
  if (decoder_ && !stopped_by_string_) text_ += decoder_->finish();
  return std::move(text_);
}

}  // namespace grpo
