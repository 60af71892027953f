#pragma once
// From a request to the tokens the model continues and the conditions that end its answer.
//
//  completions       the prompt's tokens as `grpo sample` encodes them (special-token text becomes its
//                    token; no BOS is added), or the ids given; the tokenizer's EOS stops.
//  chat completions  the messages rendered by the model's chat template (its own Jinja template, or a
//                    built-in or file given with --template) with the generation prompt, encoded with
//                    special tokens as transformers' apply_chat_template does; EOS and the template's
//                    end-of-turn strings stop (one that is a single special token stops as that id, since
//                    special tokens add no text).
//
// With ignore_eos (vLLM's extension) no token id stops: only max_tokens and stop strings. The request's own
// stop strings are added to both. A stop string is not part of the returned text,
// as in OpenAI's API.
#include <optional>
#include <string>
#include <vector>

#include "api/completion_request.h"
#include "api/reasoning_split.h"
#include "policy/tokenizer/prompt_template.h"
#include "policy/tokenizer/tokenizer.h"
#include "rollout/stop_conditions.h"

namespace grpo::api {

struct BuiltPrompt {
  std::vector<int32_t> ids;
  StopConditions stop;  // max_new_tokens is the caller's
  bool opens_reasoning = false;  // the prompt leaves the model inside a thinking block
};

// Throws ApiError 400 for a chat request when the model has no chat template, for a message the
// template refuses (a role it does not define, its raise_exception), or for prompt ids outside the
// vocabulary.
BuiltPrompt build_prompt(const CompletionRequest& request, const Tokenizer& tokenizer, const PromptTemplate* chat_template,
                         const std::optional<ReasoningMarkers>& reasoning);

}  // namespace grpo::api
