#pragma once
// When a sample stops: an end-of-sequence id, a stop string (found in the streamed text, so it is
// caught even when split across tokens), or the max_new_tokens budget.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "policy/tokenizer/streaming_decoder.h"
#include "policy/tokenizer/tokenizer.h"

namespace grpo {

enum class FinishReason { Stop, Length };
const char* to_string(FinishReason reason);  // "stop" / "length", as OpenAI-style APIs and verl name them

struct StopConditions {
  std::vector<int32_t> stop_ids;          // typically the tokenizer's EOS
  std::vector<std::string> stop_strings;  // need a tokenizer
  bool keep_stop_string = true;           // keep the matched stop string in the text
  int64_t max_new_tokens = 256;
};

// The text of one sample as it is generated, and whether it has stopped.
class CompletionText {
 public:
  // tokenizer may be null: then there is no text and stop strings are not supported.
  CompletionText(const Tokenizer* tokenizer, const StopConditions* stop);
  // Adds the next sampled token (already appended to the completion, `count` tokens so far); returns
  // the finish reason when this token ends the sample.
  std::optional<FinishReason> push(int32_t token, int64_t count);
  // The finished text: detokenized completion, cut at the stop string when one matched.
  std::string take_text();

 private:
  const StopConditions* stop_;
  std::optional<StreamingDecoder> decoder_;
  std::string text_;
  bool stopped_by_string_ = false;
};

}  // namespace grpo
