#pragma once
// Share of a text's letters written in one script: DeepSeek-R1's language-consistency reward
// (share of the chain of thought in the target language), measured on letters because word
// boundaries do not exist in Chinese or Japanese.
#include <cstdint>
#include <optional>
#include <string_view>

namespace grpo::rewards {

// Letters of `script` / letters of all known scripts (latin, han, cyrillic, greek, arabic, hebrew,
// devanagari, thai, hangul, hiragana, katakana; "kana" = both kana), in [0, 1]; 0 for a text with no
// letters. Digits, punctuation and symbols do not count. nullopt for an unknown script name.
// Invalid UTF-8 bytes are skipped.
std::optional<double> script_ratio(std::string_view text, std::string_view script);

// The script bit of one code point among the known scripts above (0 for anything else: digits,
// punctuation, symbols, other scripts), and the bits a script name stands for ("kana": two); nullopt
// for an unknown name. For word-level shares (rewards/completion_parts.h).
std::uint32_t script_mask_of(char32_t code);
std::optional<std::uint32_t> script_mask_named(std::string_view script);

}  // namespace grpo::rewards
