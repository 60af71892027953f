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
#include <string>
#include <vector>

#include "policy/tokenizer/tokenizer.h"

namespace grpo {

struct ChatMessage {
  std::string role;  // a key of the template's "roles": usually "system", "user" or "assistant"
  std::string content;
};

class PromptTemplate {
 public:
  // A built-in template by name, or a template file when name_or_path is not one. Throws
  // TokenizerError naming the file and JSON path of a malformed template, or listing the built-ins.
  static PromptTemplate load(const std::string& name_or_path);
  static PromptTemplate from_json(const std::string& json_text, const std::string& origin);
  // Names of the built-in templates.
  static std::vector<std::string> builtin_names();

  // The conversation as text; add_generation_prompt appends what makes the model answer next. Throws
  // TokenizerError for a role the template does not define.
  std::string render(const std::vector<ChatMessage>& messages, bool add_generation_prompt,
                     const Tokenizer& tokenizer) const;
  // The common case of RL prompts: one user message, ready for generation.
  std::string render_prompt(const std::string& user_content, const Tokenizer& tokenizer) const;

  // Strings that end an answer in this format (rollout stop strings).
  const std::vector<std::string>& stop_strings() const { return stop_; }
  const std::string& description() const { return description_; }

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
};

}  // namespace grpo
