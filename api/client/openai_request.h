#pragma once
// The request and response bodies of OpenAI's text-generation API, as vLLM, SGLang, Ollama, DeepSeek's
// API and `grpo serve` accept them: POST {base}/chat/completions with a message list, or
// POST {base}/completions with a prompt string; the answer's choices, each with its text (chat: the
// message's `content`, and `reasoning_content` when the server separates the reasoning, as vLLM's and
// SGLang's reasoning parsers and DeepSeek's API do) and finish reason, and the usage counts.
#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace grpo::api {

enum class ApiKind { Chat, Completions };

// The request path under the endpoint's base URL: "/chat/completions" or "/completions".
const char* api_path(ApiKind api);

// The sampling fields of a request (the names are OpenAI's; grpo's stage options map onto them:
// n, temperature, top_p, top_k, max_new_tokens -> max_tokens, stop, seed).
struct SamplingRequest {
  std::string model;
  int64_t n = 1;
  double temperature = 1.0;
  double top_p = 1.0;
  int64_t top_k = 0;  // sent only when > 0: vLLM, SGLang and grpo serve read it, OpenAI's API does not
  int64_t max_tokens = 256;
  std::vector<std::string> stop;
  std::optional<uint64_t> seed;
};

// {"model", "messages", "n", "temperature", "top_p", "max_tokens", ["stop"], ["seed"], ["top_k"]}.
nlohmann::json chat_request_body(const SamplingRequest& request, const nlohmann::json& messages);
// The same with "prompt" instead of "messages".
nlohmann::json completion_request_body(const SamplingRequest& request, const std::string& prompt);

struct ResponseChoice {
  int64_t index = 0;
  std::string content;                          // chat: message.content (null reads as ""); completions: text
  std::optional<std::string> reasoning_content;  // chat: message.reasoning_content (or message.reasoning)
  std::string finish_reason;                     // "stop", "length", ...; "" when the server gave none
};

struct ParsedResponse {
  std::vector<ResponseChoice> choices;  // ordered by index
  std::optional<int64_t> completion_tokens;  // usage.completion_tokens, for all choices together
};

// Thrown for a body that is not such a response; the message says what is missing or malformed.
struct ResponseError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Throws ResponseError (malformed JSON, no `choices` list, a choice without its text).
ParsedResponse parse_response(ApiKind api, const std::string& body);

// The message of an error body: {"error": {"message": ...}}, {"error": "..."}, {"message": ...} or
// {"detail": ...}; else the body itself, cut to 300 bytes.
std::string server_error_message(const std::string& body);

// Splits `total` tokens over the choices in proportion to their text lengths (content and reasoning,
// in bytes), largest remainders first, so the shares add up to `total`. OpenAI's usage counts all the
// choices of a request together; a record needs its own.
std::vector<int64_t> share_completion_tokens(int64_t total, const std::vector<ResponseChoice>& choices);

}  // namespace grpo::api
