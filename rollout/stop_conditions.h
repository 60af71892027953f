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
  // For streaming: the text added since the last call that no later token can change. Held back are an
  // incomplete UTF-8 character and a tail that could be the start of a stop string (which would be cut
  // if the stop string completed). Once the sample has finished, everything up to the end of its final
  // text: the pieces concatenate to take_text().
  std::string take_delta();

 private:
  const StopConditions* stop_;
  std::optional<StreamingDecoder> decoder_;
  std::string text_;
  size_t delivered_ = 0;  // bytes of text_ returned by take_delta
  bool stopped_by_string_ = false;
  bool finished_ = false;

  std::optional<FinishReason> stop_reason(int32_t token, int64_t count);
};

}  // namespace grpo
