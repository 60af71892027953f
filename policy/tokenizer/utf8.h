#pragma once
// UTF-8 scanning that never trusts its input: the tokenizer must accept any byte string.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace grpo::utf8 {

// Length of the well-formed UTF-8 sequence starting at s[0] (1..4), or 0 when s does not start with
// one (stray continuation byte, overlong form, surrogate, > U+10FFFF, or truncated sequence).
size_t valid_sequence_length(std::string_view s);

// Number of bytes of s that form a prefix of some well-formed sequence but are cut off by the end of s
// (0..3). Used by streaming decoding to hold back a character whose last bytes have not arrived yet.
size_t incomplete_tail_length(std::string_view s);

// Length of the invalid bytes at s[0] that one U+FFFD stands for when text is repaired: the maximal
// prefix of a well-formed sequence (as Rust's from_utf8_lossy and ICU do), at least 1.
size_t invalid_span_length(std::string_view s);

// Length of the longest prefix of s that is entirely well-formed UTF-8.
size_t valid_prefix_length(std::string_view s);

// Appends the UTF-8 encoding of a code point (assumed valid) to out.
void append(std::string& out, uint32_t code_point);

}  // namespace grpo::utf8
