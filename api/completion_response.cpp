#include "api/completion_response.h"

namespace grpo::api {
namespace {

Json bytes_of(const std::string& s) {
  Json out = Json::array();
  for (unsigned char c : s) out.push_back(static_cast<int>(c));
  return out;
}

const char* object_name(RequestKind kind, bool chunk) {
  if (kind == RequestKind::ChatCompletions) return chunk ? "chat.completion.chunk" : "chat.completion";
  return "text_completion";
}

}  // namespace

Json chat_logprobs(const std::vector<TokenLogprobEntry>& tokens) {
  Json content = Json::array();
  for (const TokenLogprobEntry& t : tokens) {
    Json top = Json::array();
    for (const auto& [token, logprob] : t.top)
      top.push_back({{"token", token}, {"logprob", logprob}, {"bytes", bytes_of(token)}});
    content.push_back({{"token", t.token}, {"logprob", t.logprob}, {"bytes", bytes_of(t.token)}, {"top_logprobs", top}});
  }
  return {{"content", content}};
}

Json completion_logprobs(const std::vector<TokenLogprobEntry>& tokens, int64_t first_offset) {
  Json names = Json::array(), values = Json::array(), tops = Json::array(), offsets = Json::array();
  int64_t offset = first_offset;
  for (const TokenLogprobEntry& t : tokens) {
    names.push_back(t.token);
    values.push_back(t.logprob);
    Json top = Json::object();
    for (const auto& [token, logprob] : t.top) top[token] = logprob;
    tops.push_back(top);
    offsets.push_back(offset);
    offset += static_cast<int64_t>(t.token.size());
  }
  return {{"tokens", names}, {"token_logprobs", values}, {"top_logprobs", tops}, {"text_offset", offsets}};
}

Json usage_json(const UsageCounts& u) {
  return {{"prompt_tokens", u.prompt_tokens},
          {"completion_tokens", u.completion_tokens},
          {"total_tokens", u.prompt_tokens + u.completion_tokens}};
}

Json completion_response(RequestKind kind, const std::string& id, int64_t created, const std::string& model,
                         const std::vector<ChoiceResult>& choices, const UsageCounts& usage) {
  Json list = Json::array();
  for (const ChoiceResult& c : choices) {
    Json choice = {{"index", c.index}};
    if (kind == RequestKind::ChatCompletions) {
      Json message = {{"role", "assistant"}, {"content", c.text}};
      if (c.reasoning) message["reasoning_content"] = *c.reasoning;
      choice["message"] = message;
    } else {
      choice["text"] = c.text;
    }
    choice["logprobs"] = c.logprobs;
    choice["finish_reason"] = c.finish_reason;
    list.push_back(choice);
  }
  return {{"id", id},         {"object", object_name(kind, false)}, {"created", created},
          {"model", model},   {"choices", list},                    {"usage", usage_json(usage)}};
}

Json chat_chunk(const std::string& id, int64_t created, const std::string& model, int64_t index, const ChunkDelta& delta,
                const std::optional<std::string>& finish_reason, const Json& logprobs) {
  Json d = Json::object();
  if (delta.role) d["role"] = *delta.role;
  if (delta.reasoning) d["reasoning_content"] = *delta.reasoning;
  if (delta.content) d["content"] = *delta.content;
  Json choice = {{"index", index}, {"delta", d}, {"logprobs", logprobs}, {"finish_reason", nullptr}};
  if (finish_reason) choice["finish_reason"] = *finish_reason;
  return {{"id", id}, {"object", "chat.completion.chunk"}, {"created", created}, {"model", model}, {"choices", Json::array({choice})}};
}

Json completion_chunk(const std::string& id, int64_t created, const std::string& model, int64_t index,
                      const std::string& text, const std::optional<std::string>& finish_reason, const Json& logprobs) {
  Json choice = {{"index", index}, {"text", text}, {"logprobs", logprobs}, {"finish_reason", nullptr}};
  if (finish_reason) choice["finish_reason"] = *finish_reason;
  return {{"id", id}, {"object", "text_completion"}, {"created", created}, {"model", model}, {"choices", Json::array({choice})}};
}

Json usage_chunk(RequestKind kind, const std::string& id, int64_t created, const std::string& model, const UsageCounts& usage) {
  return {{"id", id},       {"object", object_name(kind, true)}, {"created", created},
          {"model", model}, {"choices", Json::array()},          {"usage", usage_json(usage)}};
}

Json model_list(const std::string& name, int64_t created) {
  return {{"object", "list"},
          {"data", Json::array({Json{{"id", name}, {"object", "model"}, {"created", created}, {"owned_by", "grpo"}}})}};
}

std::string body(const Json& json) { return json.dump(-1, ' ', false, Json::error_handler_t::replace); }
std::string body(const nlohmann::json& json) { return json.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace); }

}  // namespace grpo::api
