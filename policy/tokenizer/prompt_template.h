#pragma once
// Prompt formatting as data: a template file (JSON) says how each role's message is wrapped, what
// starts the text and what asks the model to answer. Built in: "qwen", "qwen_no_thinking",
// "deepseek", "llama3" and "r1_zero" (policy/tokenizer/templates/*.json, compiled into the library);
// users can pass a path to their own file of the same shape:
//
//   {"begin": "{bos}",
//    "roles": {"system": "...{content}...", "user": "...", "assistant": "..."},
//    "generation_prompt": "<|im_start|>assistant\n",
//    "stop": ["<|im_end|>"]}
//
// Placeholders: {content} (the message), {bos} and {eos} (the tokenizer's role tokens as text, empty
// when it has none); "{{" and "}}" stand for literal braces. The rendered text is meant to be encoded
// with allow_special=true, as transformers' apply_chat_template does, so that the markers become
// their special tokens.
//
// A model's own Jinja chat template (tokenizer_config.json "chat_template", chat_template.jinja) is the
// other kind: rendered natively by policy/tokenizer/jinja/, byte for byte as @huggingface/jinja does
// (docs/tokenizer.md, "Chat templates"). load() takes a checkpoint directory, a tokenizer_config.json
// or a .jinja file for it; resolve() makes the checkpoint's template the default when no name is given.
#include <ctime>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "policy/tokenizer/tokenizer.h"

namespace grpo {

namespace jinja {
class Template;
}

struct ChatMessage {
  std::string role;  // a key of the template's "roles": usually "system", "user" or "assistant"
  std::string content;
  // Read by Jinja chat templates only (JSON templates ignore them): the reasoning of an assistant turn,
  // its tool calls ([{"type": "function", "function": {"name": ..., "arguments": {...}}}], null for
  // none), and further keys of the message as the template sees them (e.g. {"tool_call_id": "1"}, or
  // {"content": null} for a tool-call turn without text), written over role and content.
  std::optional<std::string> reasoning_content = std::nullopt;
  nlohmann::ordered_json tool_calls = nullptr;
  nlohmann::ordered_json extra = nullptr;
};

class PromptTemplate {
 public:
  // A built-in template by name, or else a path: a checkpoint directory (its chat template), a
  // tokenizer_config.json or chat_template.json (its "chat_template"), a .jinja file, or a JSON template
  // file. Throws TokenizerError naming the file and JSON path of a malformed template, the line:column
  // of a Jinja construct outside the supported subset, or listing the built-ins.
  static PromptTemplate load(const std::string& name_or_path);
  static PromptTemplate from_json(const std::string& json_text, const std::string& origin);
  // A Jinja chat template from its source; bos_token/eos_token as the model's config names them
  // (nullopt: the tokenizer's role tokens at render time).
  static PromptTemplate from_jinja(const std::string& source, const std::string& origin,
                                   std::optional<std::string> bos_token = std::nullopt,
                                   std::optional<std::string> eos_token = std::nullopt);
  // tokenizer_config.json text: "chat_template" is a string, or a list of {"name", "template"} from
  // which `name` is taken ("default" unless asked). Throws when there is no such template.
  static PromptTemplate from_tokenizer_config(const std::string& json_text, const std::string& origin,
                                              const std::string& name = "default");
  // The checkpoint's own chat template: chat_template.jinja, else chat_template.json, else
  // tokenizer_config.json's "chat_template" (as transformers reads them); nullopt when it has none.
  static std::optional<PromptTemplate> from_checkpoint(const std::string& dir);
  // The template a run uses: name_or_path when it is not empty (see load), else the checkpoint's own
  // chat template. Throws naming both when neither gives one.
  static PromptTemplate resolve(const std::string& name_or_path, const std::string& checkpoint_dir);
  // Names of the built-in templates.
  static std::vector<std::string> builtin_names();

  // The conversation as text; add_generation_prompt appends what makes the model answer next. Throws
  // TokenizerError for a role the template does not define (JSON templates) or when the Jinja template
  // fails (raise_exception in it, a type error), naming the template's line:column.
  std::string render(const std::vector<ChatMessage>& messages, bool add_generation_prompt,
                     const Tokenizer& tokenizer) const;
  // The same with further template variables (Jinja only; JSON templates ignore them): "tools" (a
  // list of function schemas), "enable_thinking", "date_string", ... as apply_chat_template's kwargs.
  std::string render(const std::vector<ChatMessage>& messages, bool add_generation_prompt,
                     const Tokenizer& tokenizer, const nlohmann::ordered_json& variables) const;
  // The common case of RL prompts: one user message, ready for generation.
  std::string render_prompt(const std::string& user_content, const Tokenizer& tokenizer) const;

  // Strings that end an answer in this format (rollout stop strings).
  const std::vector<std::string>& stop_strings() const { return stop_; }
  const std::string& description() const { return description_; }
  // True for a model's Jinja chat template, false for a JSON template.
  bool is_jinja() const { return jinja_ != nullptr; }
  // The time strftime_now() formats in a Jinja template (UTC); the current time when not set.
  void set_strftime_time(std::time_t t) { now_ = t; }

 private:
  struct Role {
    std::string name, format;
  };
  std::string origin_;
  std::string description_;
  std::string begin_;
  std::vector<Role> roles_;
  std::string generation_prompt_;
  std::vector<std::string> stop_;
  // A Jinja chat template (then begin_, roles_, generation_prompt_ are unused).
  std::shared_ptr<const jinja::Template> jinja_;
  std::optional<std::string> bos_token_, eos_token_;
  std::optional<std::time_t> now_;
};

}  // namespace grpo
