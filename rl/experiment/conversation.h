#pragma once
// Conversational records, as TRL takes them, rendered with a prompt template
// (policy/tokenizer/prompt_template.h):
//
//   {"messages": [{"role": "system", "content": ...}, {"role": "user", ...}, {"role": "assistant", ...}, ...]}
//   {"prompt": [{"role": "user", "content": ...}], "completion": [{"role": "assistant", "content": ...}]}
//
// A record is conversational when its `prompt` is a list, or when it has a `messages` list and no string
// `prompt` (a grpo.sample record of a conversational dataset keeps `messages` but has its rendered
// `prompt` string, so it reads as text again). What each stage takes of it:
//
//  - RL prompts (grpo.train, grpo.eval, grpo.sample, grpo.rejection_sample): the `prompt` list, or the
//    `messages` up to and including the last user turn; rendered with the generation prompt appended.
//  - SFT: the whole conversation — `messages`, or `prompt` followed by `completion` (a list, or a string
//    that is one assistant message). The loss covers the assistant turns only: every assistant turn of
//    `messages`, the assistant turns of `completion` (an assistant turn inside `prompt`, a few-shot
//    example, is context). Of a trained turn, its content and what the template writes after it (the
//    end-of-turn marker, e.g. "<|im_end|>" or {eos}) are targets; the role header before it is not.
//
// Tokens, with a JSON template: the template's begin text, then each message as three parts — the role
// header, the content, the text after the content — and, for a prompt, the generation prompt; each part
// is encoded on its own, markers with special tokens allowed, contents without (a message cannot forge a
// marker). BOS is what the template's "begin" says ({bos}); none is added otherwise. With a Jinja chat
// template (the model's own, the default): the text is rendered whole and encoded with special tokens
// allowed, as transformers does, in pieces cut at the trained turns; assistant turn k is what rendering
// turns 0..k adds to turns 0..k-1 with the generation prompt (an error names the message when a template
// does not write turns as prefixes of each other, e.g. one that drops earlier reasoning).
#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "policy/tokenizer/prompt_template.h"
#include "policy/tokenizer/tokenizer.h"
#include "rl/sft.h"

namespace grpo {

class StageOptions;  // rl/experiment/stage_options.h

// Whether `record` is in one of the conversational forms above.
bool is_conversational(const nlohmann::json& record);

// The prompt turns of a conversational record as a chat API takes them (JSON messages): its `prompt`
// message list whole, or its `messages` up to and including the last user turn. Throws
// std::invalid_argument ("record N: ...") for a message that is not {role, content} strings, or for
// `messages` without a user turn.
nlohmann::json prompt_message_list(const nlohmann::json& record, size_t record_number);

// The rendered text and its tokens; assistant[k] is 1 where token k is an SFT target.
struct RenderedConversation {
  std::string text;
  std::vector<int32_t> ids;
  std::vector<uint8_t> assistant;
};

class ConversationRenderer {
 public:
  ConversationRenderer(PromptTemplate chat_template, Tokenizer tokenizer);

  // The RL prompt of a conversational record (record_number is 1-based, for errors). Throws
  // std::invalid_argument naming the record for a malformed message list, or one without a user turn
  // (messages form); TokenizerError for a role the template does not define.
  RenderedConversation prompt(const nlohmann::json& record, size_t record_number) const;

  // The SFT example of a conversational record: prompt_ids up to the first target token, then the rest
  // with a completion_mask that is 1 on assistant tokens. Throws std::invalid_argument naming the
  // record when no assistant turn is trained.
  SftExample training_example(const nlohmann::json& record, size_t record_number) const;

  // Messages rendered as above; turns from `trained_from` on that are assistant turns are targets.
  RenderedConversation render(const std::vector<ChatMessage>& messages, bool add_generation_prompt,
                              size_t trained_from) const;

 private:
  // A role's format split around its content: the text before and after it.
  struct RoleParts {
    std::string before, after;
  };
  RoleParts role_parts(const std::string& role) const;
  // A Jinja chat template: the whole text rendered at once and encoded in the pieces between trained
  // turns; turn k's span is what rendering turns 0..k adds to turns 0..k-1 with the generation prompt.
  RenderedConversation render_jinja(const std::vector<ChatMessage>& messages, bool add_generation_prompt,
                                    size_t trained_from) const;
  void append(RenderedConversation& out, const std::string& text, bool allow_special, bool target) const;

  PromptTemplate template_;
  Tokenizer tokenizer_;
  std::string begin_, generation_prompt_;
};

// The renderer of a stage's conversational records: its option "template" (a built-in name, a template
// file, a Jinja template or a checkpoint's), else the chat template of the stage's model (Jinja, as
// transformers reads it). Throws LuaError naming the stage when there is neither (record_number names
// the first conversational record) or the template cannot be loaded.
ConversationRenderer stage_conversation_renderer(StageOptions& o, const Tokenizer& tok, size_t record_number);

// The stop strings of the stage's template (none without the option): the rollout stops at them.
std::vector<std::string> stage_template_stop_strings(StageOptions& o);

}  // namespace grpo
