#pragma once
// An OpenAI-compatible server for the client's tests, in process on 127.0.0.1 at a port the OS picks:
// each test gives the handler that answers POST /v1/chat/completions and /v1/completions, and reads
// back what the server saw (request bodies, headers, how many were in flight at once).
#include <httplib.h>
#include <nlohmann/json.hpp>

#include <atomic>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace grpo::test {

struct SeenRequest {
  std::string path;
  nlohmann::json body;
  std::string authorization;
};

class FakeOpenAIServer {
 public:
  // Answers request number `call` (0-based, in arrival order) whose parsed body is `body`.
  using Handler = std::function<void(int call, const nlohmann::json& body, httplib::Response& response)>;

  explicit FakeOpenAIServer(Handler handler) : handler_(std::move(handler)) {
    auto serve = [this](const httplib::Request& request, httplib::Response& response) {
      const int now = ++in_flight_;
      for (int seen = max_in_flight_; now > seen && !max_in_flight_.compare_exchange_weak(seen, now);) {
      }
      int call = 0;
      nlohmann::json body = nlohmann::json::parse(request.body, nullptr, false);
      {
        std::lock_guard<std::mutex> lock(mutex_);
        call = static_cast<int>(seen_.size());
        seen_.push_back({request.path, body, request.get_header_value("Authorization")});
      }
      handler_(call, body, response);
      --in_flight_;
    };
    server_.Post("/v1/chat/completions", serve);
    server_.Post("/v1/completions", serve);
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
  }
  ~FakeOpenAIServer() {
    server_.stop();
    thread_.join();
  }

  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/v1"; }
  int port() const { return port_; }
  std::vector<SeenRequest> seen() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return seen_;
  }
  int requests() const { return static_cast<int>(seen().size()); }
  int max_in_flight() const { return max_in_flight_; }

 private:
  Handler handler_;
  httplib::Server server_;
  int port_ = 0;
  std::thread thread_;
  mutable std::mutex mutex_;
  std::vector<SeenRequest> seen_;
  std::atomic<int> in_flight_{0}, max_in_flight_{0};
};

// A chat response with one choice per (content, reasoning) pair; reasoning "" leaves the field out.
inline nlohmann::json chat_response(const std::vector<std::pair<std::string, std::string>>& choices, int64_t completion_tokens,
                                    const std::string& finish_reason = "stop") {
  nlohmann::json out = {{"id", "chatcmpl-1"}, {"object", "chat.completion"}, {"choices", nlohmann::json::array()},
                        {"usage", {{"prompt_tokens", 5}, {"completion_tokens", completion_tokens}}}};
  for (size_t k = 0; k < choices.size(); ++k) {
    nlohmann::json message = {{"role", "assistant"}, {"content", choices[k].first}};
    if (!choices[k].second.empty()) message["reasoning_content"] = choices[k].second;
    out["choices"].push_back({{"index", k}, {"message", message}, {"finish_reason", finish_reason}});
  }
  return out;
}

inline void reply_json(httplib::Response& response, int status, const nlohmann::json& body) {
  response.status = status;
  response.set_content(body.dump(), "application/json");
}

}  // namespace grpo::test
