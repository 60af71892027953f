#include "api/server/prompt_builder.h"

#include <fmt/core.h>

#include <algorithm>

#include "api/openai_errors.h"

namespace grpo::api {
namespace {

void add_stop_string(StopConditions& stop, const Tokenizer& tokenizer, const std::string& s) {
  const std::vector<int32_t> ids = tokenizer.encode(s, /*allow_special=*/true);
  if (ids.size() == 1 && tokenizer.is_special(ids[0])) {
    if (std::find(stop.stop_ids.begin(), stop.stop_ids.end(), ids[0]) == stop.stop_ids.end()) stop.stop_ids.push_back(ids[0]);
  } else if (std::find(stop.stop_strings.begin(), stop.stop_strings.end(), s) == stop.stop_strings.end()) {
    stop.stop_strings.push_back(s);
  }
}

}  // namespace

BuiltPrompt build_prompt(const CompletionRequest& request, const Tokenizer& tokenizer, const PromptTemplate* chat_template,
                         const std::optional<ReasoningMarkers>& reasoning) {
  BuiltPrompt out;
  out.stop.keep_stop_string = false;
  if (tokenizer.eos_id() >= 0) out.stop.stop_ids.push_back(tokenizer.eos_id());
  std::string text;
  if (request.kind == RequestKind::Completions) {
    if (request.prompt_ids) {
      for (size_t i = 0; i < request.prompt_ids->size(); ++i)
        if ((*request.prompt_ids)[i] >= tokenizer.vocab_size())
          throw invalid_request(fmt::format("'prompt[{}]' is token id {}, outside the vocabulary [0, {})", i,
                                            (*request.prompt_ids)[i], tokenizer.vocab_size()),
                                "prompt");
      out.ids = *request.prompt_ids;
      text = tokenizer.decode(out.ids);
    } else {
      text = request.prompt;
      out.ids = tokenizer.encode(text);
    }
  } else {
    if (!chat_template)
      throw invalid_request("This model has no chat template: use /v1/completions, or start the server with --template", "messages");
    std::vector<ChatMessage> messages;
    for (const RequestMessage& m : request.messages) {
      ChatMessage c;
      c.role = m.role;
      c.content = m.content;
      c.reasoning_content = m.reasoning_content;
      messages.push_back(std::move(c));
    }
    try {
      nlohmann::ordered_json variables = nlohmann::ordered_json::parse(request.chat_template_kwargs.dump());
      text = chat_template->render(messages, request.add_generation_prompt, tokenizer, variables);
    } catch (const TokenizerError& e) {
      throw invalid_request(fmt::format("The chat template cannot render these messages: {}", e.what()), "messages");
    }
    out.ids = tokenizer.encode(text, /*allow_special=*/true);
    for (const std::string& s : chat_template->stop_strings()) add_stop_string(out.stop, tokenizer, s);
  }
  if (request.ignore_eos) out.stop.stop_ids.clear();  // EOS and end-of-turn tokens no longer stop
  for (const std::string& s : request.stop) add_stop_string(out.stop, tokenizer, s);
  if (out.ids.empty()) throw invalid_request("The prompt is empty (it encodes to no tokens)", request.kind == RequestKind::Completions ? "prompt" : "messages");
  if (reasoning) out.opens_reasoning = prompt_opens_reasoning(text, *reasoning);
  return out;
}

}  // namespace grpo::api
