#pragma once
// One HTTP connection to an OpenAI-compatible endpoint (cpp-httplib, kept out of this header): a JSON
// body POSTed under the endpoint's base URL, with the API key as a bearer token, once. Retrying is the
// caller's (retry_policy.h). Not safe to share between threads: give each worker its own.
#include <nlohmann/json.hpp>

#include <memory>
#include <optional>
#include <stdexcept>
#include <string>

namespace httplib {
class Client;
}

namespace grpo::api {

// A user-given endpoint that is not an http(s) URL.
struct EndpointError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// "http://host:port/v1" split into what the connection takes and the path requests go under.
struct EndpointUrl {
  std::string scheme_host_port;  // "http://host:port" (the port may be absent: the scheme's)
  std::string base_path;         // "/v1", or "" for a bare host
};

// Throws EndpointError naming the URL and the expected shape (http or https, a host, an optional port,
// an optional path; no query string).
EndpointUrl parse_endpoint_url(const std::string& url);

// The outcome of one request: the status and body of a response, or status 0 and what went wrong on
// the way (connection refused, read timeout).
struct HttpReply {
  int status = 0;
  std::string body;
  std::string error;                    // status 0 only
  std::optional<double> retry_after_s;  // the Retry-After header, parsed (retry_policy.h)
};

class OpenAIClient {
 public:
  // `timeout_s` bounds the connection and each wait for the server's bytes (a server that answers
  // nothing for that long is a timeout: status 0). An empty api_key sends no Authorization header.
  OpenAIClient(const std::string& base_url, std::string api_key, double timeout_s);
  ~OpenAIClient();
  OpenAIClient(const OpenAIClient&) = delete;
  OpenAIClient& operator=(const OpenAIClient&) = delete;

  // POST {base_path}{path} with the JSON body.
  HttpReply post_json(const std::string& path, const nlohmann::json& body);

 private:
  EndpointUrl url_;
  std::unique_ptr<httplib::Client> client_;
};

}  // namespace grpo::api
