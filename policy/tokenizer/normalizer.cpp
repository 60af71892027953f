#include "policy/tokenizer/normalizer.h"

#include <unicode/bytestream.h>
#include <unicode/normalizer2.h>

#include "policy/tokenizer/tokenizer_error.h"

namespace grpo {

namespace {

const icu::Normalizer2& instance(Normalizer::Form form) {
  UErrorCode status = U_ZERO_ERROR;
  const icu::Normalizer2* n = nullptr;
  switch (form) {
    case Normalizer::Form::kNFC: n = icu::Normalizer2::getNFCInstance(status); break;
    case Normalizer::Form::kNFD: n = icu::Normalizer2::getNFDInstance(status); break;
    case Normalizer::Form::kNFKC: n = icu::Normalizer2::getNFKCInstance(status); break;
    case Normalizer::Form::kNFKD: n = icu::Normalizer2::getNFKDInstance(status); break;
  }
  if (U_FAILURE(status) || !n) throw TokenizerError(std::string("ICU normalizer unavailable: ") + u_errorName(status));
  return *n;
}

bool is_ascii(std::string_view text) {
  for (unsigned char c : text) {
    if (c >= 0x80) return false;
  }
  return true;
}

}  // namespace

std::string_view Normalizer::apply(std::string_view text, std::string& scratch) const {
  if (steps_.empty() || is_ascii(text)) return text;  // ASCII is invariant under all four forms
  std::string_view current = text;
  std::string result;
  for (Form form : steps_) {
    const icu::Normalizer2& n = instance(form);
    UErrorCode status = U_ZERO_ERROR;
    const icu::StringPiece piece(current.data(), static_cast<int32_t>(current.size()));
    if (n.isNormalizedUTF8(piece, status) && U_SUCCESS(status)) continue;
    status = U_ZERO_ERROR;
    result.clear();
    icu::StringByteSink<std::string> sink(&result);
    n.normalizeUTF8(0, piece, sink, nullptr, status);
    if (U_FAILURE(status)) throw TokenizerError(std::string("Unicode normalization failed: ") + u_errorName(status));
    scratch.swap(result);
    current = scratch;
  }
  return current;
}

}  // namespace grpo
