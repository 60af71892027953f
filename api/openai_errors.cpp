#include "api/openai_errors.h"

#include <fmt/core.h>

namespace grpo::api {

ApiError::ApiError(int status_, const std::string& message, std::string type_, std::optional<std::string> param_,
                   std::optional<std::string> code_)
    : std::runtime_error(message), status(status_), type(std::move(type_)), param(std::move(param_)), code(std::move(code_)) {}

ApiError invalid_request(const std::string& message, std::optional<std::string> param) {
  return ApiError(400, message, "invalid_request_error", std::move(param));
}

ApiError invalid_api_key() {
  return ApiError(401, "Incorrect API key provided: send it as the header 'Authorization: Bearer <key>'",
                  "authentication_error", std::nullopt, "invalid_api_key");
}

ApiError model_not_found(const std::string& model) {
  return ApiError(404, fmt::format("The model '{}' does not exist (GET /v1/models lists the one served)", model),
                  "invalid_request_error", "model", "model_not_found");
}

ApiError unknown_path(const std::string& method, const std::string& path) {
  return ApiError(404, fmt::format("Unknown request URL: {} {}", method, path), "invalid_request_error", std::nullopt,
                  "unknown_url");
}

ApiError body_too_large(size_t limit_bytes) {
  return ApiError(413, fmt::format("The request body is larger than the limit of {} bytes", limit_bytes),
                  "invalid_request_error", std::nullopt, "request_too_large");
}

ApiError context_length_exceeded(const std::string& message, const std::string& param) {
  return ApiError(413, message, "invalid_request_error", param, "context_length_exceeded");
}

ApiError queue_full(int64_t max_queue) {
  return ApiError(429, fmt::format("The server is busy: all {} waiting places are taken; retry later", max_queue),
                  "rate_limit_error", std::nullopt, "queue_full");
}

ApiError shutting_down() {
  return ApiError(503, "The server is shutting down", "server_error", std::nullopt, "shutting_down");
}

ApiError server_error(const std::string& message) { return ApiError(500, message, "server_error"); }

nlohmann::json error_body(const ApiError& e) {
  nlohmann::json error = {{"message", e.what()}, {"type", e.type}, {"param", nullptr}, {"code", nullptr}};
  if (e.param) error["param"] = *e.param;
  if (e.code) error["code"] = *e.code;
  return {{"error", error}};
}

ApiError error_for_status(int status) {
  switch (status) {
    case 400: return invalid_request("The request could not be read as HTTP");
    case 401: return invalid_api_key();
    case 404: return ApiError(404, "Not found", "invalid_request_error", std::nullopt, "unknown_url");
    case 405: return ApiError(405, "Method not allowed", "invalid_request_error");
    case 413: return ApiError(413, "The request body is too large", "invalid_request_error", std::nullopt, "request_too_large");
    case 414: return ApiError(414, "The request URI is too long", "invalid_request_error");
    case 429: return ApiError(429, "Too many requests", "rate_limit_error");
    case 503: return shutting_down();
    default:
      return ApiError(status, fmt::format("HTTP status {}", status), status >= 500 ? "server_error" : "invalid_request_error");
  }
}

}  // namespace grpo::api
