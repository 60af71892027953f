// Every error status of `grpo serve`, in OpenAI's shape, naming the field at fault; never a 500 for
// what a client sends.
#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <thread>

#include "serve_test_server.h"

using namespace grpo;
using nlohmann::json;

namespace {

// Checks the status and the error's shape; returns the error object.
json expect_error(const httplib::Result& res, int status) {
  REQUIRE(res);
  CAPTURE(res->body);
  CHECK(res->status == status);
  json body = json::parse(res->body);
  REQUIRE(body.contains("error"));
  const json& e = body["error"];
  CHECK(e["message"].is_string());
  CHECK(!e["message"].get<std::string>().empty());
  CHECK(e["type"].is_string());
  CHECK(e.contains("param"));
  CHECK(e.contains("code"));
  return e;
}

json chat(json extra = json::object()) {
  json body = {{"model", "tiny"}, {"messages", {{{"role", "user"}, {"content", "hi"}}}}, {"max_tokens", 4}};
  for (auto& [k, v] : extra.items()) body[k] = v;
  return body;
}

}  // namespace

TEST_CASE("400: malformed JSON, unknown and mistyped fields, values out of range, each named") {
  test::TestServer server;
  httplib::Client c = server.client();
  json e = expect_error(c.Post("/v1/chat/completions", "{\"model\": \"tiny\", ", "application/json"), 400);
  CHECK(e["message"].get<std::string>().find("not valid JSON") != std::string::npos);
  expect_error(c.Post("/v1/chat/completions", "[1, 2]", "application/json"), 400);

  struct Case {
    json extra;
    std::string param;
  };
  const std::vector<Case> cases = {
      {{{"temprature", 0.5}}, "temprature"},          {{{"temperature", 2.5}}, "temperature"},
      {{{"temperature", "hot"}}, "temperature"},      {{{"top_p", 0}}, "top_p"},
      {{{"n", 0}}, "n"},                              {{{"n", 1000}}, "n"},
      {{{"max_tokens", -1}}, "max_tokens"},           {{{"max_tokens", 1.5}}, "max_tokens"},
      {{{"stop", 5}}, "stop"},                        {{{"stop", {"a", 1}}}, "stop[1]"},
      {{{"seed", "x"}}, "seed"},                      {{{"presence_penalty", 0.5}}, "presence_penalty"},
      {{{"logit_bias", {{"5", 1}}}}, "logit_bias"},  {{{"top_logprobs", 30}, {"logprobs", true}}, "top_logprobs"},
      {{{"top_logprobs", 2}}, "top_logprobs"},        {{{"stream", "yes"}}, "stream"},
      {{{"stream_options", {{"include_usage", true}}}}, "stream_options"},
      {{{"messages", json::array()}}, "messages"},    {{{"messages", {{{"role", "robot"}, {"content", "x"}}}}}, "messages[0].role"},
      {{{"messages", {{{"role", "user"}, {"content", "x"}, {"colour", 1}}}}}, "messages[0].colour"},
      {{{"response_format", {{"type", "json_object"}}}}, "response_format"},
      {{{"tools", {{{"type", "function"}}}}}, "tools"},
  };
  for (const Case& k : cases) {
    CAPTURE(k.extra.dump());
    json err = expect_error(c.Post("/v1/chat/completions", chat(k.extra).dump(), "application/json"), 400);
    CHECK(err["param"] == k.param);
    CHECK(err["message"].get<std::string>().find(k.param.substr(0, k.param.find('['))) != std::string::npos);
  }
  // Fields clients send with their defaults are accepted.
  auto ok = c.Post("/v1/chat/completions",
                   chat({{"user", "u1"}, {"presence_penalty", 0}, {"frequency_penalty", 0.0}, {"logit_bias", json::object()},
                         {"stream", false}, {"seed", nullptr}, {"tools", json::array()}})
                       .dump(),
                   "application/json");
  REQUIRE(ok);
  CHECK(ok->status == 200);
  // Completions: a prompt list of several prompts, echo.
  json err = expect_error(c.Post("/v1/completions", json({{"model", "tiny"}, {"prompt", {"a", "b"}}}).dump(), "application/json"), 400);
  CHECK(err["param"] == "prompt");
  err = expect_error(c.Post("/v1/completions", json({{"model", "tiny"}, {"prompt", "a"}, {"echo", true}}).dump(), "application/json"), 400);
  CHECK(err["param"] == "echo");
  err = expect_error(c.Post("/v1/completions", json({{"model", "tiny"}}).dump(), "application/json"), 400);
  CHECK(err["param"] == "prompt");
  // max_tokens beyond what the context leaves.
  err = expect_error(c.Post("/v1/completions", json({{"model", "tiny"}, {"prompt", "ab"}, {"max_tokens", 1000}}).dump(), "application/json"), 400);
  CHECK(err["param"] == "max_tokens");
}

TEST_CASE("401 for a missing or wrong key; 404 for an unknown model or path") {
  api::ServerOptions o;
  o.api_key = "secret";
  test::TestServer server(o);
  httplib::Client c = server.client();
  json e = expect_error(c.Post("/v1/chat/completions", chat().dump(), "application/json"), 401);
  CHECK(e["code"] == "invalid_api_key");
  expect_error(c.Post("/v1/chat/completions", {{"Authorization", "Bearer wrong"}}, chat().dump(), "application/json"), 401);
  expect_error(c.Get("/v1/models"), 401);
  auto health = c.Get("/health");  // no key needed
  REQUIRE(health);
  CHECK(health->status == 200);
  const httplib::Headers key = {{"Authorization", "Bearer secret"}};
  auto ok = c.Post("/v1/chat/completions", key, chat().dump(), "application/json");
  REQUIRE(ok);
  CHECK(ok->status == 200);
  e = expect_error(c.Post("/v1/chat/completions", key, chat({{"model", "gpt-4"}}).dump(), "application/json"), 404);
  CHECK(e["param"] == "model");
  CHECK(e["code"] == "model_not_found");
  e = expect_error(c.Get("/v1/nothing", key), 404);
  CHECK(e["message"].get<std::string>().find("/v1/nothing") != std::string::npos);
  expect_error(c.Post("/v2/chat/completions", key, chat().dump(), "application/json"), 404);
}

TEST_CASE("413 for an oversized body and for a prompt longer than the context") {
  api::ServerOptions o;
  o.max_body_bytes = 4096;
  test::TestServer server(o, /*context=*/64);
  httplib::Client c = server.client();
  json e = expect_error(c.Post("/v1/completions", json({{"model", "tiny"}, {"prompt", std::string(5000, 'a')}}).dump(), "application/json"), 413);
  CHECK(e["message"].get<std::string>().find("4096") != std::string::npos);
  e = expect_error(c.Post("/v1/completions", json({{"model", "tiny"}, {"prompt", std::string(100, 'a')}}).dump(), "application/json"), 413);
  CHECK(e["code"] == "context_length_exceeded");
  CHECK(e["param"] == "prompt");
  e = expect_error(c.Post("/v1/chat/completions", chat({{"messages", {{{"role", "user"}, {"content", std::string(80, 'b')}}}}}).dump(), "application/json"), 413);
  CHECK(e["param"] == "messages");
  // The server still answers.
  auto ok = c.Post("/v1/completions", json({{"model", "tiny"}, {"prompt", "ab"}, {"max_tokens", 3}}).dump(), "application/json");
  REQUIRE(ok);
  CHECK(ok->status == 200);
}

TEST_CASE("429 when every row and waiting place is taken; the queue drains afterwards") {
  api::ServerOptions o;
  o.max_batch_rows = 1;
  o.max_queue = 1;
  test::TestServer server(o, /*context=*/4096);
  // A long request holds the only row; a second waits; a third finds no place.
  const json long_request = {{"model", "tiny"}, {"prompt", "a"}, {"max_tokens", 2000}, {"temperature", 1.0}, {"seed", 1},
                                {"ignore_eos", true}};
  auto first = std::async(std::launch::async, [&] { return server.client().Post("/v1/completions", long_request.dump(), "application/json"); });
  httplib::Client probe = server.client();
  auto busy = [&](int64_t rows, int64_t waiting) {
    for (int i = 0; i < 400; ++i) {
      auto h = probe.Get("/health");
      if (h && json::parse(h->body)["live_rows"] == rows && json::parse(h->body)["waiting"] == waiting) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return false;
  };
  REQUIRE(busy(1, 0));
  auto second = std::async(std::launch::async, [&] { return server.client().Post("/v1/completions", long_request.dump(), "application/json"); });
  REQUIRE(busy(1, 1));
  httplib::Client c = server.client();
  json e = expect_error(c.Post("/v1/completions", long_request.dump(), "application/json"), 429);
  CHECK(e["code"] == "queue_full");
  auto a = first.get();
  auto b = second.get();
  REQUIRE(a);
  REQUIRE(b);
  CHECK(a->status == 200);
  CHECK(b->status == 200);
  // The same request and seed give the same answer, whether it waited for its row or not.
  CHECK(json::parse(a->body)["choices"][0]["text"] == json::parse(b->body)["choices"][0]["text"]);
}
