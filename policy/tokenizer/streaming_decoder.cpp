#include "policy/tokenizer/streaming_decoder.h"

#include "policy/tokenizer/utf8.h"

namespace grpo {

namespace {

constexpr const char* kReplacementCharacter = "\xEF\xBF\xBD";  // U+FFFD

// Appends bytes to out as valid UTF-8, each maximal invalid sequence replaced by U+FFFD.
void append_repaired(std::string& out, std::string_view bytes) {
  size_t i = 0;
  while (i < bytes.size()) {
    const size_t valid = utf8::valid_prefix_length(bytes.substr(i));
    out.append(bytes.data() + i, valid);
    i += valid;
    if (i < bytes.size()) {
      out += kReplacementCharacter;
      i += utf8::invalid_span_length(bytes.substr(i));
    }
  }
}

}  // namespace

StreamingDecoder::StreamingDecoder(const Tokenizer& tokenizer, bool skip_special)
    : tokenizer_(&tokenizer), skip_special_(skip_special) {}

std::string StreamingDecoder::push(int32_t id) {
  const std::string& bytes = tokenizer_->token_bytes(id);  // validates id
  if (skip_special_ && tokenizer_->is_special(id)) return "";
  pending_ += bytes;
  const size_t held = utf8::incomplete_tail_length(pending_);
  std::string out;
  append_repaired(out, std::string_view(pending_).substr(0, pending_.size() - held));
  pending_.erase(0, pending_.size() - held);
  return out;
}

std::string StreamingDecoder::finish() {
  std::string out;
  append_repaired(out, pending_);
  pending_.clear();
  return out;
}

}  // namespace grpo
