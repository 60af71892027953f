#pragma once
// Errors in the shape OpenAI's API returns them, with the HTTP status that goes with each:
//
//   {"error": {"message": "...", "type": "invalid_request_error", "param": "temperature", "code": null}}
//
// `param` names the request field at fault (null when none); `code` is a short machine-readable reason
// (null when the type says it all). Clients (the openai libraries) read the message and the status.
#include <nlohmann/json.hpp>

#include <optional>
#include <stdexcept>
#include <string>

namespace grpo::api {

struct ApiError : std::runtime_error {
  ApiError(int status, const std::string& message, std::string type, std::optional<std::string> param = std::nullopt,
           std::optional<std::string> code = std::nullopt);
  int status;
  std::string type;
  std::optional<std::string> param;
  std::optional<std::string> code;
};

// 400: a request OpenAI's API would refuse as well (malformed JSON, an unknown or mistyped field, a
// value out of range); `param` names the field.
ApiError invalid_request(const std::string& message, std::optional<std::string> param = std::nullopt);
// 401: a missing or wrong API key.
ApiError invalid_api_key();
// 404: an unknown model (param "model") or path.
ApiError model_not_found(const std::string& model);
ApiError unknown_path(const std::string& method, const std::string& path);
// 413: a body over the size limit, or a prompt that leaves no room in the model's context.
ApiError body_too_large(size_t limit_bytes);
ApiError context_length_exceeded(const std::string& message, const std::string& param);
// 429: every waiting place is taken; 503: the server is shutting down.
ApiError queue_full(int64_t max_queue);
ApiError shutting_down();
// 500: a failure of the server itself (never caused by the request's content).
ApiError server_error(const std::string& message);

// The JSON body of an error.
nlohmann::json error_body(const ApiError& error);
// The error body's shape for a bare status (what the HTTP layer produced without a handler).
ApiError error_for_status(int status);

}  // namespace grpo::api
