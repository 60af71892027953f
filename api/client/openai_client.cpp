#include "api/client/openai_client.h"

#include <fmt/core.h>
#include <httplib.h>

#include <cmath>

#include "api/client/retry_policy.h"

namespace grpo::api {

EndpointUrl parse_endpoint_url(const std::string& url) {
  auto bad = [&](const std::string& why) {
    return EndpointError(fmt::format("endpoint \"{}\": {} (expected http://host:port/path, e.g. http://127.0.0.1:8000/v1)", url, why));
  };
  const size_t scheme_end = url.find("://");
  if (scheme_end == std::string::npos) throw bad("no scheme");
  const std::string scheme = url.substr(0, scheme_end);
  if (scheme != "http" && scheme != "https") throw bad(fmt::format("the scheme must be http or https, not \"{}\"", scheme));
  const size_t host_begin = scheme_end + 3;
  const size_t path_begin = url.find('/', host_begin);
  const std::string authority = url.substr(host_begin, path_begin == std::string::npos ? std::string::npos : path_begin - host_begin);
  if (authority.empty()) throw bad("no host");
  if (authority.find('@') != std::string::npos) throw bad("credentials belong in the API key variable, not in the URL");
  const size_t colon = authority.rfind(':');
  if (colon != std::string::npos && authority.find(']') == std::string::npos) {
    const std::string port = authority.substr(colon + 1);
    if (colon == 0) throw bad("no host");
    if (port.empty() || port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos || std::stoi(port) > 65535 ||
        std::stoi(port) == 0)
      throw bad(fmt::format("the port \"{}\" is not a number from 1 to 65535", port));
  }
  std::string path = path_begin == std::string::npos ? "" : url.substr(path_begin);
  if (path.find_first_of("?#") != std::string::npos) throw bad("a query string or fragment has no place in a base URL");
  while (!path.empty() && path.back() == '/') path.pop_back();
  for (const char* suffix : {"/chat/completions", "/completions"}) {
    const std::string s = suffix;
    if (path.size() >= s.size() && path.compare(path.size() - s.size(), s.size(), s) == 0)
      throw bad(fmt::format("give the base URL, without \"{}\" (the request path is added to it)", s));
  }
  return {scheme + "://" + authority, path};
}

namespace {

// What went wrong on the way, in words (httplib's own names are one word: "Connection", "Read").
std::string transport_error(httplib::Error error) {
  switch (error) {
    case httplib::Error::Connection: return "could not connect (nothing listening there, or the host is unreachable)";
    case httplib::Error::ConnectionTimeout: return "could not connect within the timeout";
    case httplib::Error::Read: return "no answer within the timeout, or the connection dropped";
    case httplib::Error::Write: return "the connection dropped while sending the request";
    case httplib::Error::SSLConnection: return "the TLS handshake failed";
    case httplib::Error::SSLServerVerification: return "the server's TLS certificate could not be verified";
    default: return "request failed: " + httplib::to_string(error);
  }
}

}  // namespace

OpenAIClient::OpenAIClient(const std::string& base_url, std::string api_key, double timeout_s)
    : url_(parse_endpoint_url(base_url)), client_(std::make_unique<httplib::Client>(url_.scheme_host_port)) {
  const double whole = std::floor(timeout_s);
  const auto seconds = static_cast<time_t>(whole);
  const auto micros = static_cast<time_t>((timeout_s - whole) * 1e6);
  client_->set_connection_timeout(seconds, micros);
  client_->set_read_timeout(seconds, micros);
  client_->set_write_timeout(seconds, micros);
  client_->set_keep_alive(true);
  if (!api_key.empty()) client_->set_bearer_token_auth(api_key);
}

OpenAIClient::~OpenAIClient() = default;

HttpReply OpenAIClient::post_json(const std::string& path, const nlohmann::json& body) {
  HttpReply reply;
  httplib::Result result = client_->Post((url_.base_path + path).c_str(), body.dump(), "application/json");
  if (!result) {
    reply.error = transport_error(result.error());
    return reply;
  }
  reply.status = result->status;
  reply.body = result->body;
  if (result->has_header("Retry-After")) reply.retry_after_s = parse_retry_after(result->get_header_value("Retry-After"));
  return reply;
}

}  // namespace grpo::api
