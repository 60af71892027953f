#pragma once
// A compiled PCRE2 pattern (UTF + Unicode properties, JIT when available). The pre-tokenizer regexes of
// tokenizer.json files are written for Oniguruma; they use \p{L}, \p{N} and look-ahead, which PCRE2
// reads the same way.
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

namespace grpo {

class Regex {
 public:
  // literal: match the pattern text verbatim (a Split "String" pattern). Throws TokenizerError naming
  // json_path and PCRE2's message when the pattern does not compile.
  Regex(const std::string& pattern, bool literal, const std::string& json_path);
  ~Regex();
  Regex(Regex&&) noexcept;
  Regex& operator=(Regex&&) noexcept;

  struct Match {
    size_t begin = 0, end = 0;
    bool found = false;
  };
  // The first match in subject at or after byte offset start. subject must be valid UTF-8 and start
  // must be at a character boundary (the caller guarantees both; they are not re-checked).
  Match find(std::string_view subject, size_t start) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace grpo
