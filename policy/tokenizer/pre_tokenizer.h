#pragma once
// The pre-tokenizer of tokenizer.json: a sequence of regex splits that cut text into words before BPE.
// Split, the regex of ByteLevel(use_regex) and Digits all reduce to "find matches, then keep, drop or
// glue them to a neighbour" (Hugging Face's SplitDelimiterBehavior), which is all this class does.
#include <cstddef>
#include <string_view>
#include <vector>

#include "policy/tokenizer/regex.h"

namespace grpo {

class PreTokenizer {
 public:
  enum class Behavior { kIsolated, kRemoved, kMergedWithPrevious, kMergedWithNext, kContiguous };
  struct Range {
    size_t begin, end;  // byte offsets into the text given to split()
  };

  // Appends one step; each step splits every piece the previous steps produced.
  void add_step(Regex regex, Behavior behavior);
  bool empty() const { return steps_.empty(); }

  // Splits valid UTF-8 text into non-empty pieces, in order, appended to out.
  void split(std::string_view text, std::vector<Range>& out) const;

 private:
  struct Step {
    Regex regex;
    Behavior behavior;
  };
  void split_piece(const Step& step, std::string_view text, Range piece, std::vector<Range>& out) const;

  std::vector<Step> steps_;
};

}  // namespace grpo
