#include "policy/tokenizer/regex.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "policy/tokenizer/tokenizer_error.h"

namespace grpo {

struct Regex::Impl {
  pcre2_code* code = nullptr;
  bool jit = false;
  ~Impl() {
    if (code) pcre2_code_free(code);
  }
};

namespace {
// One match-data block per thread and per ovector size: matching happens millions of times per
// encode, and creating the block each time would dominate short matches.
pcre2_match_data* thread_match_data() {
  struct Holder {
    pcre2_match_data* data = pcre2_match_data_create(1, nullptr);
    ~Holder() { pcre2_match_data_free(data); }
  };
  thread_local Holder holder;
  return holder.data;
}
}  // namespace

Regex::Regex(const std::string& pattern, bool literal, const std::string& json_path) : impl_(new Impl) {
  int error_code = 0;
  PCRE2_SIZE error_offset = 0;
  const uint32_t options = PCRE2_UTF | (literal ? PCRE2_LITERAL : PCRE2_UCP);  // LITERAL rejects UCP
  impl_->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(), options, &error_code,
                              &error_offset, nullptr);
  if (!impl_->code) {
    PCRE2_UCHAR message[256];
    pcre2_get_error_message(error_code, message, sizeof(message));
    throw TokenizerError(json_path + ": regex does not compile at offset " + std::to_string(error_offset) + ": " +
                         reinterpret_cast<const char*>(message));
  }
  impl_->jit = pcre2_jit_compile(impl_->code, PCRE2_JIT_COMPLETE) == 0;
}

Regex::~Regex() = default;
Regex::Regex(Regex&&) noexcept = default;
Regex& Regex::operator=(Regex&&) noexcept = default;

Regex::Match Regex::find(std::string_view subject, size_t start) const {
  pcre2_match_data* data = thread_match_data();
  const auto* s = reinterpret_cast<PCRE2_SPTR>(subject.data());
  const int rc = impl_->jit ? pcre2_jit_match(impl_->code, s, subject.size(), start, 0, data, nullptr)
                            : pcre2_match(impl_->code, s, subject.size(), start, PCRE2_NO_UTF_CHECK, data, nullptr);
  if (rc == PCRE2_ERROR_NOMATCH) return {};
  if (rc < 0) {
    PCRE2_UCHAR message[256];
    pcre2_get_error_message(rc, message, sizeof(message));
    throw TokenizerError(std::string("pre-tokenizer regex failed: ") + reinterpret_cast<const char*>(message));
  }
  const PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(data);
  return {ovector[0], ovector[1], true};
}

}  // namespace grpo
