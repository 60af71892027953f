#pragma once
// reasoning_content, as DeepSeek's API returns it for reasoning models: the text a model writes
// before its end-of-thinking marker ("</think>" in DeepSeek-R1's and Qwen3's chat templates) is the
// reasoning, the rest the answer's content.
//
//  - A prompt that opens a thinking block (DeepSeek-R1's generation prompt ends in "<think>\n") starts
//    the completion inside it. Otherwise a completion that begins with the start marker (after
//    whitespace) opens one; one that begins with anything else has no reasoning.
//  - Without the end marker, everything after an opened block is reasoning (the answer was cut off
//    while thinking), as vLLM's DeepSeek-R1 parser reads it.
//  - Whitespace between the end marker and the answer is dropped.
//
// ReasoningSplitter does this on streamed text: it returns each piece as soon as no later text can
// change which part it belongs to, holding back only what could still be the start of a marker. The
// pieces concatenate to what split_reasoning gives for the whole text.
#include <string>
#include <string_view>

namespace grpo::api {

struct ReasoningParts {
  std::string reasoning;
  std::string content;
};

struct ReasoningMarkers {
  std::string start = "<think>";
  std::string end = "</think>";
};

// Whether a prompt leaves the model inside a thinking block: its last start marker comes after its
// last end marker.
bool prompt_opens_reasoning(std::string_view prompt, const ReasoningMarkers& markers);

class ReasoningSplitter {
 public:
  ReasoningSplitter(ReasoningMarkers markers, bool starts_in_reasoning);
  // The parts of `text` (appended to what came before) that are settled.
  ReasoningParts push(std::string_view text);
  // The end of the text: what was held back.
  ReasoningParts finish();

 private:
  enum class State { Undecided, Reasoning, ContentStart, Content };
  ReasoningMarkers markers_;
  State state_;
  std::string pending_;
};

ReasoningParts split_reasoning(std::string_view text, const ReasoningMarkers& markers, bool starts_in_reasoning);

}  // namespace grpo::api
