#pragma once
// The bodies a server answers with: chat.completion and text_completion objects, their streamed
// chunks (chat.completion.chunk, text_completion), usage counts, log-probs in each endpoint's format
// and the model list, field for field as OpenAI's API writes them. Texts may hold any bytes a model
// produced: body() writes invalid UTF-8 as U+FFFD, never failing.
#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "api/completion_request.h"

namespace grpo::api {

using Json = nlohmann::ordered_json;

// One sampled token: its text, its log-prob and the likeliest alternatives (top_logprobs).
struct TokenLogprobEntry {
  std::string token;  // the token's bytes (may be part of a UTF-8 character)
  double logprob = 0;
  std::vector<std::pair<std::string, double>> top;
};

// chat: {"content": [{"token", "logprob", "bytes", "top_logprobs": [{"token", "logprob", "bytes"}]}]}
Json chat_logprobs(const std::vector<TokenLogprobEntry>& tokens);
// completions: {"tokens", "token_logprobs", "top_logprobs": [{token: logprob}], "text_offset"}, offsets
// counted from `first_offset` bytes.
Json completion_logprobs(const std::vector<TokenLogprobEntry>& tokens, int64_t first_offset);

struct ChoiceResult {
  int64_t index = 0;
  std::string text;                        // chat: message.content; completions: text
  std::optional<std::string> reasoning;    // chat: message.reasoning_content (reasoning models)
  std::string finish_reason;               // "stop" or "length"
  Json logprobs = nullptr;                 // chat_logprobs / completion_logprobs, or null
};

struct UsageCounts {
  int64_t prompt_tokens = 0, completion_tokens = 0;
};

Json usage_json(const UsageCounts& usage);
// A whole answer: {"id", "object", "created", "model", "choices", "usage"}.
Json completion_response(RequestKind kind, const std::string& id, int64_t created, const std::string& model,
                         const std::vector<ChoiceResult>& choices, const UsageCounts& usage);

// One streamed chunk of a choice. Chat: `delta` holds role, content and/or reasoning_content (only the
// fields given); completions: the text. finish_reason is null until the choice's last chunk.
struct ChunkDelta {
  std::optional<std::string> role, content, reasoning;
};
Json chat_chunk(const std::string& id, int64_t created, const std::string& model, int64_t index, const ChunkDelta& delta,
                const std::optional<std::string>& finish_reason, const Json& logprobs = nullptr);
Json completion_chunk(const std::string& id, int64_t created, const std::string& model, int64_t index,
                      const std::string& text, const std::optional<std::string>& finish_reason, const Json& logprobs = nullptr);
// The last chunk of a stream with stream_options.include_usage: no choices, the usage.
Json usage_chunk(RequestKind kind, const std::string& id, int64_t created, const std::string& model, const UsageCounts& usage);

// GET /v1/models: {"object": "list", "data": [{"id", "object": "model", "created", "owned_by"}]}.
Json model_list(const std::string& name, int64_t created);

// The JSON text of a body; invalid UTF-8 in strings becomes U+FFFD.
std::string body(const Json& json);
std::string body(const nlohmann::json& json);

}  // namespace grpo::api
