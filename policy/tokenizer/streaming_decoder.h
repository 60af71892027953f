#pragma once
// Detokenization during generation: ids arrive one by one, and a byte-level token may end in the
// middle of a UTF-8 character (an emoji is often 2-4 tokens). StreamingDecoder holds back such an
// incomplete tail until the rest arrives, so every piece of text it returns is valid UTF-8 and stop
// strings can be searched in the concatenation of the pieces.
#include <cstdint>
#include <string>

#include "policy/tokenizer/tokenizer.h"

namespace grpo {

class StreamingDecoder {
 public:
  // The tokenizer must outlive the decoder. skip_special: special tokens (e.g. <|im_end|>) add no text.
  explicit StreamingDecoder(const Tokenizer& tokenizer, bool skip_special = true);

  // Feeds one id; returns the text it completes (possibly empty). Bytes that can never become valid
  // UTF-8 come out as U+FFFD, one per maximal invalid sequence, as in Python's errors="replace".
  // Throws TokenizerError for an id outside the vocabulary.
  std::string push(int32_t id);

  // Ends the stream: returns what was held back (an incomplete character becomes U+FFFD) and resets.
  std::string finish();

  // Bytes received but not yet returned (0..3).
  size_t pending_bytes() const { return pending_.size(); }

 private:
  const Tokenizer* tokenizer_;
  bool skip_special_;
  std::string pending_;
};

}  // namespace grpo
