#pragma once
// The body of POST /v1/completions and POST /v1/chat/completions, read and checked as a server takes
// it. Every field is checked for its type and range, and a field the server does not know is refused:
// ApiError 400 naming it (openai_errors.h), so that a typo never silently changes what is sampled.
// Optional fields that OpenAI's clients send with their defaults are accepted when their value does
// not change the output (user, presence_penalty 0, logit_bias {}, ...); any other value is refused
// with a message saying what is supported. null reads as absent.
#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace grpo::api {

enum class RequestKind { Completions, ChatCompletions };

struct RequestMessage {
  std::string role;     // system, user, assistant, developer (read as system), tool
  std::string content;  // a string, or the text parts of a content list joined
  std::optional<std::string> reasoning_content;
};

// What the server needs to know to answer.
struct CompletionRequest {
  RequestKind kind = RequestKind::ChatCompletions;
  std::string model;
  std::string prompt;                         // completions: the text prompt
  std::optional<std::vector<int32_t>> prompt_ids;  // completions: a prompt given as token ids
  std::vector<RequestMessage> messages;       // chat
  bool add_generation_prompt = true;          // chat (vLLM's extension): false continues the last message
  nlohmann::json chat_template_kwargs = nlohmann::json::object();  // chat (vLLM's extension): e.g. enable_thinking
  int64_t n = 1;
  double temperature = 1.0;                   // 0 = greedy
  double top_p = 1.0;
  int64_t top_k = 0;                          // vLLM's extension; 0 = off
  double min_p = 0.0;                         // vLLM's extension; 0 = off
  std::optional<int64_t> max_tokens;          // absent: what the context leaves
  std::vector<std::string> stop;
  std::optional<uint64_t> seed;               // absent: a random seed
  bool logprobs = false;                      // report the sampled tokens' log-probs
  int64_t top_logprobs = 0;                   // and this many alternatives per token
  bool ignore_eos = false;                    // vLLM's extension: only max_tokens and stop strings end a sample
  bool stream = false;
  bool include_usage = false;                 // stream_options.include_usage: usage in a last chunk
};

struct RequestLimits {
  int64_t max_n = 128;  // samples per request (the server's batch rows)
};

// Reads the JSON body; throws ApiError 400 for malformed JSON, a missing required field, an unknown
// or mistyped field or a value out of range, naming the field (e.g. "messages[2].role").
CompletionRequest parse_completion_request(RequestKind kind, const std::string& body, const RequestLimits& limits);

}  // namespace grpo::api
