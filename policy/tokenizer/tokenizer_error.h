#pragma once
// The one error type of the tokenizer: a malformed or unsupported tokenizer.json (or a bad id, or a
// template that does not parse). The message names the file and the JSON path of the problem, e.g.
// "tokenizer.json: /model/byte_fallback: true is not supported (expected false)".
#include <stdexcept>
#include <string>

namespace grpo {

class TokenizerError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace grpo
