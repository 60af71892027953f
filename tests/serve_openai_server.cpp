// `grpo serve`'s HTTP API end to end on loopback: every endpoint and option against
// RolloutEngine::generate of the same prompt, seed and settings (what `grpo sample` runs), streaming
// against the whole answer, 32 concurrent requests, and the error statuses.
#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <future>
#include <vector>

#include "api/server_sent_events.h"
#include "serve_test_server.h"

using namespace grpo;
using nlohmann::json;

namespace {

// What generate gives a prompt with the server's conventions: EOS and the template's end of turn
// stop, a stop string is cut from the text.
std::vector<Completion> reference(const std::vector<int32_t>& prompt, int64_t n, uint64_t seed, SamplingParams sampling,
                                  int64_t max_new, std::vector<std::string> stop_strings = {}, bool chat = false) {
  static Tokenizer tok = test::serve_tokenizer();
  static CausalLM model = test::serve_model();
  RolloutOptions o;
  o.sampling = sampling;
  o.stop.max_new_tokens = max_new;
  o.stop.stop_ids = {tok.eos_id()};
  if (chat) o.stop.stop_ids.push_back(tok.token_to_id("<|im_end|>"));
  o.stop.stop_strings = std::move(stop_strings);
  o.stop.keep_stop_string = false;
  RolloutEngine engine(model, &tok, o);
  return engine.generate({{prompt, n, seed}});
}

std::vector<int32_t> chat_prompt(const std::string& user) {
  Tokenizer tok = test::serve_tokenizer();
  return tok.encode("<|im_start|>user\n" + user + "<|im_end|>\n<|im_start|>assistant\n[", /*allow_special=*/true);
}

// The reasoning split as the test's template defines it, computed by hand: up to the first ']' is
// reasoning, the rest (without leading whitespace) is the content.
std::pair<std::string, std::string> split_by_hand(const std::string& text) {
  const size_t end = text.find(']');
  if (end == std::string::npos) return {text, ""};
  std::string content = text.substr(end + 1);
  content.erase(0, content.find_first_not_of(" \n"));
  if (content.find_first_not_of(" \n") == std::string::npos) content.clear();
  return {text.substr(0, end), content};
}

json post(const test::TestServer& server, const std::string& path, const json& body, int expect_status = 200) {
  httplib::Client c = server.client();
  auto res = c.Post(path.c_str(), body.dump(), "application/json");
  REQUIRE(res);
  CAPTURE(res->body);
  CHECK(res->status == expect_status);
  return json::parse(res->body);
}

// The data of every event of a streamed answer; the last must be [DONE].
std::vector<json> stream(const test::TestServer& server, const std::string& path, const json& body) {
  httplib::Client c = server.client();
  auto res = c.Post(path.c_str(), body.dump(), "application/json");
  REQUIRE(res);
  CHECK(res->status == 200);
  CHECK(res->get_header_value("Content-Type").find("text/event-stream") == 0);
  api::SseReader reader;
  std::vector<std::string> events = reader.push(res->body);
  REQUIRE(!events.empty());
  CHECK(events.back() == "[DONE]");
  std::vector<json> out;
  for (size_t i = 0; i + 1 < events.size(); ++i) out.push_back(json::parse(events[i]));
  return out;
}

}  // namespace

TEST_CASE("health and the model list") {
  test::TestServer server;
  httplib::Client c = server.client();
  auto health = c.Get("/health");
  REQUIRE(health);
  CHECK(health->status == 200);
  CHECK(json::parse(health->body)["status"] == "ok");
  auto models = c.Get("/v1/models");
  REQUIRE(models);
  json m = json::parse(models->body);
  CHECK(m["object"] == "list");
  REQUIRE(m["data"].size() == 1);
  CHECK(m["data"][0]["id"] == "tiny");
}

TEST_CASE("completions: n samples with a seed are generate's, with usage, stop strings cut and finish reasons") {
  test::TestServer server;
  Tokenizer tok = test::serve_tokenizer();
  const std::vector<int32_t> prompt = tok.encode("abc de");
  json r = post(server, "/v1/completions",
                {{"model", "tiny"}, {"prompt", "abc de"}, {"n", 3}, {"seed", 42}, {"temperature", 0.9}, {"top_p", 0.95},
                 {"max_tokens", 20}, {"stop", {"q", "x"}}});
  std::vector<Completion> expected = reference(prompt, 3, 42, {0.9, 0, 0.95, 0.0}, 20, {"q", "x"});
  CHECK(r["object"] == "text_completion");
  REQUIRE(r["choices"].size() == 3);
  int64_t tokens = 0;
  for (int i = 0; i < 3; ++i) {
    CHECK(r["choices"][i]["index"] == i);
    CHECK(r["choices"][i]["text"] == expected[i].text);
    CHECK(r["choices"][i]["finish_reason"] == to_string(expected[i].finish_reason));
    CHECK(r["choices"][i]["logprobs"].is_null());
    tokens += static_cast<int64_t>(expected[i].completion_ids.size());
  }
  CHECK(r["usage"]["prompt_tokens"] == prompt.size());
  CHECK(r["usage"]["completion_tokens"] == tokens);
  CHECK(r["usage"]["total_tokens"] == static_cast<int64_t>(prompt.size()) + tokens);
  // max_tokens: lengths end at it.
  json greedy = post(server, "/v1/completions", {{"model", "tiny"}, {"prompt", "abc de"}, {"temperature", 0}, {"max_tokens", 5}});
  std::vector<Completion> g = reference(prompt, 1, 0, {0.0, 0, 1.0, 0.0}, 5);
  CHECK(greedy["choices"][0]["text"] == g[0].text);
  CHECK(greedy["choices"][0]["finish_reason"] == to_string(g[0].finish_reason));
}

TEST_CASE("chat: messages through the template, reasoning_content split at the end marker, logprobs") {
  test::TestServer server;
  Tokenizer tok = test::serve_tokenizer();
  json r = post(server, "/v1/chat/completions",
                {{"model", "tiny"}, {"messages", {{{"role", "user"}, {"content", "hello"}}}}, {"n", 4}, {"seed", 7},
                 {"max_completion_tokens", 30}, {"logprobs", true}, {"top_logprobs", 2}});
  std::vector<Completion> expected = reference(chat_prompt("hello"), 4, 7, {1.0, 0, 1.0, 0.0}, 30, {}, /*chat=*/true);
  CHECK(r["object"] == "chat.completion");
  REQUIRE(r["choices"].size() == 4);
  bool some_split = false;
  for (int i = 0; i < 4; ++i) {
    const json& choice = r["choices"][i];
    const auto [reasoning, content] = split_by_hand(expected[i].text);
    CHECK(choice["message"]["role"] == "assistant");
    CHECK(choice["message"]["reasoning_content"] == reasoning);
    CHECK(choice["message"]["content"] == content);
    some_split |= !content.empty();
    const json& lp = choice["logprobs"]["content"];
    REQUIRE(lp.size() == expected[i].completion_ids.size());
    for (size_t t = 0; t < lp.size(); ++t) {
      CHECK(lp[t]["token"] == tok.token_bytes(expected[i].completion_ids[t]));
      CHECK(lp[t]["logprob"].get<double>() == doctest::Approx(expected[i].logprobs[t]).epsilon(1e-6));
      REQUIRE(lp[t]["top_logprobs"].size() == 2);
      CHECK(lp[t]["top_logprobs"][0]["logprob"].get<double>() >= lp[t]["top_logprobs"][1]["logprob"].get<double>());
      CHECK(lp[t]["top_logprobs"][0]["logprob"].get<double>() >= lp[t]["logprob"].get<double>() - 1e-9);
    }
  }
  CHECK(some_split);
  CHECK(r["usage"]["prompt_tokens"] == chat_prompt("hello").size());
}

TEST_CASE("streaming: the deltas add up to the whole answer, reasoning first, usage in the last chunk") {
  test::TestServer server;
  const json request = {{"model", "tiny"}, {"messages", {{{"role", "user"}, {"content", "abc"}}}}, {"n", 2}, {"seed", 11},
                        {"max_tokens", 40}};
  json whole = post(server, "/v1/chat/completions", request);
  json streamed_request = request;
  streamed_request["stream"] = true;
  streamed_request["stream_options"] = {{"include_usage", true}};
  std::vector<json> chunks = stream(server, "/v1/chat/completions", streamed_request);
  std::string reasoning[2], content[2], finish[2];
  bool content_seen[2] = {false, false};
  for (size_t k = 0; k + 1 < chunks.size(); ++k) {
    const json& ch = chunks[k];
    CHECK(ch["object"] == "chat.completion.chunk");
    CHECK(ch["id"] == chunks[0]["id"]);
    REQUIRE(ch["choices"].size() == 1);
    const int i = ch["choices"][0]["index"];
    const json& delta = ch["choices"][0]["delta"];
    if (delta.contains("reasoning_content")) {
      CHECK(!content_seen[i]);  // reasoning comes first
      reasoning[i] += delta["reasoning_content"].get<std::string>();
    }
    if (delta.contains("content")) {
      content[i] += delta["content"].get<std::string>();
      content_seen[i] |= !delta["content"].get<std::string>().empty();
    }
    if (!ch["choices"][0]["finish_reason"].is_null()) finish[i] = ch["choices"][0]["finish_reason"];
  }
  for (int i = 0; i < 2; ++i) {
    CHECK(reasoning[i] == whole["choices"][i]["message"]["reasoning_content"]);
    CHECK(content[i] == whole["choices"][i]["message"]["content"]);
    CHECK(finish[i] == whole["choices"][i]["finish_reason"]);
  }
  const json& last = chunks.back();
  CHECK(last["choices"].empty());
  CHECK(last["usage"] == whole["usage"]);

  // Completions stream text chunks; their concatenation is the whole text.
  const json text_request = {{"model", "tiny"}, {"prompt", "hello"}, {"seed", 3}, {"max_tokens", 25}, {"stop", "e"}};
  json text_whole = post(server, "/v1/completions", text_request);
  json text_streamed = text_request;
  text_streamed["stream"] = true;
  std::string text;
  for (const json& ch : stream(server, "/v1/completions", text_streamed)) {
    CHECK(ch["object"] == "text_completion");
    text += ch["choices"][0]["text"].get<std::string>();
    CHECK(!ch.contains("usage"));  // not asked for
  }
  CHECK(text == text_whole["choices"][0]["text"]);
}

TEST_CASE("32 concurrent requests are decoded together and each gets its own answer") {
  api::ServerOptions o;
  o.max_batch_rows = 16;  // fewer rows than requests: they queue and join as rows free up
  test::TestServer server(o);
  std::vector<std::future<json>> answers;
  for (int i = 0; i < 32; ++i)
    answers.push_back(std::async(std::launch::async, [&server, i] {
      const bool chat = i % 2 == 0;
      json body = {{"model", "tiny"}, {"seed", 1000 + i}, {"max_tokens", 10 + i % 7}, {"temperature", 0.5 + 0.05 * (i % 5)}};
      if (chat)
        body["messages"] = {{{"role", "user"}, {"content", "q" + std::string(1, static_cast<char>('a' + i % 26))}}};
      else
        body["prompt"] = "p" + std::string(1, static_cast<char>('a' + i % 26));
      httplib::Client c = server.client();
      auto res = c.Post(chat ? "/v1/chat/completions" : "/v1/completions", body.dump(), "application/json");
      if (!res) return json(httplib::to_string(res.error()));
      return res->status == 200 ? json::parse(res->body) : json(res->body);
    }));
  Tokenizer tok = test::serve_tokenizer();
  for (int i = 0; i < 32; ++i) {
    CAPTURE(i);
    json r = answers[i].get();
    CAPTURE(r.dump());
    REQUIRE(r.is_object());
    const bool chat = i % 2 == 0;
    const std::string letter(1, static_cast<char>('a' + i % 26));
    std::vector<Completion> e = reference(chat ? chat_prompt("q" + letter) : tok.encode("p" + letter), 1, 1000 + i,
                                          {0.5 + 0.05 * (i % 5), 0, 1.0, 0.0}, 10 + i % 7, {}, chat);
    if (chat) {
      const auto [reasoning, content] = split_by_hand(e[0].text);
      CHECK(r["choices"][0]["message"]["reasoning_content"] == reasoning);
      CHECK(r["choices"][0]["message"]["content"] == content);
    } else {
      CHECK(r["choices"][0]["text"] == e[0].text);
    }
    CHECK(r["usage"]["completion_tokens"] == e[0].completion_ids.size());
  }
}
