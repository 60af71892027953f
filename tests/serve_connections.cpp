// Connections that misbehave or end: a client that disconnects mid-stream frees its rows, a slow
// reader still gets its whole stream, and shutdown drains or cancels requests in flight.
#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <future>
#include <thread>

#include "api/server_sent_events.h"
#include "serve_test_server.h"

using namespace grpo;
using nlohmann::json;
using namespace std::chrono_literals;

namespace {

// A bare HTTP/1.1 client on a socket, to read at its own pace or hang up mid-response.
class RawClient {
 public:
  explicit RawClient(int port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(fd_ >= 0);
    timeval timeout{10, 0};  // no read waits longer than this
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    int small = 1024;  // a small receive buffer: the server's writes wait for this reader
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  }
  ~RawClient() { close(); }
  void close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
  void post(const std::string& path, const json& body) {
    const std::string b = body.dump();
    const std::string req = "POST " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: " +
                            std::to_string(b.size()) + "\r\nConnection: close\r\n\r\n" + b;
    REQUIRE(::send(fd_, req.data(), req.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(req.size()));
  }
  // Up to `n` bytes; empty at the end of the stream or after the read timeout.
  std::string read_some(size_t n) {
    std::string buf(n, '\0');
    const ssize_t got = ::recv(fd_, buf.data(), n, 0);
    buf.resize(got > 0 ? static_cast<size_t>(got) : 0);
    return buf;
  }

 private:
  int fd_ = -1;
};

// Polls /health until live rows and waiting requests are as given (bounded).
bool wait_for_load(const test::TestServer& server, int64_t rows, int64_t waiting) {
  httplib::Client c = server.client(5);
  for (int i = 0; i < 1000; ++i) {
    auto h = c.Get("/health");
    if (h && h->status == 200) {
      json j = json::parse(h->body);
      if (j["live_rows"] == rows && j["waiting"] == waiting) return true;
    }
    std::this_thread::sleep_for(10ms);
  }
  return false;
}

// The text of a chunked SSE response read whole: the events' data after the HTTP header, decoded
// from chunked transfer encoding.
std::vector<std::string> events_of(const std::string& raw) {
  const size_t header_end = raw.find("\r\n\r\n");
  REQUIRE(header_end != std::string::npos);
  std::string body;
  size_t at = header_end + 4;
  while (at < raw.size()) {
    const size_t line_end = raw.find("\r\n", at);
    if (line_end == std::string::npos) break;
    const size_t size = std::stoul(raw.substr(at, line_end - at), nullptr, 16);
    if (size == 0) break;
    body += raw.substr(line_end + 2, size);
    at = line_end + 2 + size + 2;
  }
  api::SseReader reader;
  return reader.push(body);
}

}  // namespace

TEST_CASE("a client that disconnects mid-stream frees its rows at once") {
  test::TestServer server({}, /*context=*/4096);
  {
    RawClient client(server.port);
    client.post("/v1/completions", {{"model", "tiny"}, {"prompt", "ab"}, {"n", 3}, {"max_tokens", 4000}, {"ignore_eos", true},
                                    {"stream", true}});
    std::string got;
    while (got.find("data: ") == std::string::npos) {
      std::string piece = client.read_some(256);
      REQUIRE(!piece.empty());
      got += piece;
    }
    REQUIRE(wait_for_load(server, 3, 0));  // three rows decoding
    client.close();
  }
  // The next write fails (or the keep-alive comment does), and the request is cancelled: its rows go.
  CHECK(wait_for_load(server, 0, 0));
  // And the server goes on answering.
  auto res = server.client().Post("/v1/completions", json({{"model", "tiny"}, {"prompt", "ab"}, {"max_tokens", 3}}).dump(), "application/json");
  REQUIRE(res);
  CHECK(res->status == 200);
}

TEST_CASE("a slow reader gets its whole stream, and the other requests are not held up") {
  test::TestServer server;
  const json request = {{"model", "tiny"}, {"prompt", "hello"}, {"seed", 5}, {"max_tokens", 200}, {"ignore_eos", true}};
  json whole = json::parse(server.client().Post("/v1/completions", request.dump(), "application/json")->body);
  json streamed = request;
  streamed["stream"] = true;
  RawClient slow(server.port);
  slow.post("/v1/completions", streamed);
  std::string raw = slow.read_some(64);
  // While it dawdles, another request is answered.
  auto other = server.client().Post("/v1/completions", json({{"model", "tiny"}, {"prompt", "x"}, {"max_tokens", 5}}).dump(), "application/json");
  REQUIRE(other);
  CHECK(other->status == 200);
  for (int i = 0; i < 2000; ++i) {
    std::string piece = slow.read_some(97);
    if (piece.empty()) break;
    raw += piece;
    if (i % 20 == 0) std::this_thread::sleep_for(5ms);
  }
  std::vector<std::string> events = events_of(raw);
  REQUIRE(!events.empty());
  CHECK(events.back() == "[DONE]");
  std::string text;
  for (size_t i = 0; i + 1 < events.size(); ++i) text += json::parse(events[i])["choices"][0]["text"].get<std::string>();
  CHECK(text == whole["choices"][0]["text"]);
}

TEST_CASE("shutdown lets short requests finish, cancels what outlasts the drain time, and refuses new ones") {
  api::ServerOptions o;
  o.drain_seconds = 3;
  test::TestServer server(o, /*context=*/100000);
  const json endless = {{"model", "tiny"}, {"prompt", "ab"}, {"max_tokens", 90000}, {"ignore_eos", true}};
  auto whole = std::async(std::launch::async, [&] { return server.client().Post("/v1/completions", endless.dump(), "application/json"); });
  json streamed_request = endless;
  streamed_request["stream"] = true;
  RawClient streaming(server.port);
  streaming.post("/v1/completions", streamed_request);
  REQUIRE(wait_for_load(server, 2, 0));
  const json short_request = {{"model", "tiny"}, {"prompt", "ab"}, {"max_tokens", 100}, {"ignore_eos", true}};
  auto finishing = std::async(std::launch::async, [&] { return server.client().Post("/v1/completions", short_request.dump(), "application/json"); });
  REQUIRE(wait_for_load(server, 3, 0));
  const auto start = std::chrono::steady_clock::now();
  server.stop();  // returns once every connection is closed
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  CHECK(seconds < 10);
  auto finished = finishing.get();  // drained: answered in full
  REQUIRE(finished);
  CHECK(finished->status == 200);
  CHECK(json::parse(finished->body)["usage"]["completion_tokens"] == 100);
  auto cut = whole.get();
  REQUIRE(cut);
  CHECK(cut->status == 503);
  CHECK(json::parse(cut->body)["error"]["code"] == "shutting_down");
  std::string raw;
  for (std::string piece = streaming.read_some(4096); !piece.empty(); piece = streaming.read_some(4096)) raw += piece;
  std::vector<std::string> events = events_of(raw);
  REQUIRE(events.size() >= 2);
  CHECK(events.back() == "[DONE]");
  CHECK(json::parse(events[events.size() - 2])["error"]["code"] == "shutting_down");
  // Nothing listens any more.
  httplib::Client c = server.client(2);
  CHECK(!c.Get("/health"));
}
