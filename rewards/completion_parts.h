#pragma once
// The parts of an R1-style completion and the language of its reasoning (verify.reasoning,
// verify.summary, verify.split_reasoning, verify.language_share, verify.language_consistency; the
// exact semantics are in docs/rewards.md, "Parts of a completion").
//
// DeepSeek-R1 answers as  <think> reasoning </think> summary : the reasoning is the chain of thought,
// the summary the readable answer. R1 scores them apart: language consistency on the chain of thought,
// helpfulness on the summary only.
#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <string_view>

namespace grpo::rewards {

inline constexpr std::string_view kDefaultThinkingMarker = "</think>";

struct CompletionParts {
  std::string_view reasoning;  // before the first marker, its opening tag and surrounding whitespace removed
  std::string_view summary;    // after the first marker, trimmed; empty without a marker
  bool has_marker = false;
};

// Splits `text` at the first occurrence of `marker` (an end-of-thinking marker such as "</think>" or
// "</t>"). When the marker is a closing tag "</x>", a leading opening tag "<x>" of the reasoning is
// dropped. Without the marker the whole text (opening tag dropped, trimmed) is the reasoning — an
// answer that never stopped thinking — and the summary is empty. Both parts are trimmed of ASCII
// whitespace. The views point into `text`. Throws std::invalid_argument for an empty marker.
CompletionParts split_reasoning(std::string_view text, std::string_view marker = kDefaultThinkingMarker);

// What "the target language" is for language_share: the letters of a script, a set of characters, or a
// list of words. Exactly one of the three is used, in that order.
struct LanguageTarget {
  std::optional<std::uint32_t> script;  // a script mask (script_mask_of)
  std::set<char32_t> chars;             // a user-given character set
  std::set<std::string> words;          // a user-given vocabulary
};

// A target for a script name of verify.script_ratio ("latin", "han", ...); nullopt for an unknown name.
std::optional<LanguageTarget> script_target(std::string_view script);
// A target for a set of characters (UTF-8); throws std::invalid_argument for an empty set.
LanguageTarget chars_target(std::string_view chars);

// Share of the words of `text` written in the target language, DeepSeek-R1's language-consistency
// reward (words in the target language / words). Words are the runs of text between ASCII whitespace,
// with ASCII punctuation stripped at both ends. Only words with a letter count: for a script target a
// letter of any known script (script_ratio.h), otherwise any character that is not an ASCII digit or
// ASCII punctuation; numbers, "=", "+" and the like are neither in nor out. A counted word is in the
// target when all its letters are of the target script, all its letters are in `chars`, or the
// stripped word is in `words`. 0 when no word counts (an empty text included).
double language_share(std::string_view text, const LanguageTarget& target);

}  // namespace grpo::rewards
