#pragma once
// GPT-2's byte-level alphabet: every byte 0..255 is shown as one printable code point, so that vocab
// entries of byte-level BPE files are readable strings ("Ġ" is the space byte 0x20). Tokens are
// stored in that alphabet in tokenizer.json; encoding and decoding here work on the raw bytes.
#include <optional>
#include <string>
#include <string_view>

namespace grpo::byte_level {

// The code point that stands for byte b.
char32_t byte_to_code_point(unsigned char b);

// The UTF-8 string of one byte's stand-in character (e.g. 0x20 -> "Ġ").
std::string byte_to_token_text(unsigned char b);

// The raw bytes a byte-level token string stands for, or nullopt when some character of it is not in
// the alphabet (e.g. an added token written in plain text such as "<｜User｜>").
std::optional<std::string> token_text_to_bytes(std::string_view token_text);

}  // namespace grpo::byte_level
