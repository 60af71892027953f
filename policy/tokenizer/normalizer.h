#pragma once
// The normalizer of tokenizer.json: Unicode normalization forms (Qwen's files use NFC), possibly as a
// Sequence. Implemented with ICU, the same Unicode tables that the reference implementations use.
#include <string>
#include <string_view>
#include <vector>

namespace grpo {

class Normalizer {
 public:
  enum class Form { kNFC, kNFD, kNFKC, kNFKD };

  void add_step(Form form) { steps_.push_back(form); }
  bool empty() const { return steps_.empty(); }

  // Normalizes valid UTF-8 text. Returns text itself when nothing changes (the usual case: checking is
  // much cheaper than rewriting), otherwise a view of scratch, which holds the result.
  std::string_view apply(std::string_view text, std::string& scratch) const;

 private:
  std::vector<Form> steps_;
};

}  // namespace grpo
