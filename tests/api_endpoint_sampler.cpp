// Sampling prompts from an OpenAI-compatible endpoint (api/client/endpoint_sampler.h), against a fake
// server on 127.0.0.1 that counts what it is sent: records, retries and their waits, timeouts, refusals,
// malformed answers, the concurrency bound and resuming from a killed run's file.
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <mutex>
#include <set>
#include <thread>

#include "api/client/endpoint_sampler.h"
#include "api/client/openai_client.h"
#include "api/client/resumable_sample_file.h"
#include "api_fake_openai_server.h"

using namespace grpo::api;
using grpo::test::chat_response;
using grpo::test::FakeOpenAIServer;
using grpo::test::reply_json;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

std::vector<EndpointPrompt> text_prompts(int count) {
  std::vector<EndpointPrompt> out;
  for (int i = 0; i < count; ++i) out.push_back({"question " + std::to_string(i), nullptr, {{"id", i}, {"answer", std::to_string(i)}}});
  return out;
}

// Options for the fake server: no waits (recorded instead), no jitter, a short timeout.
struct RecordedSleeps {
  std::mutex mutex;
  std::vector<double> seconds;
  std::function<void(double)> function() {
    return [this](double s) {
      std::lock_guard<std::mutex> lock(mutex);
      seconds.push_back(s);
    };
  }
};

EndpointSamplerOptions options_for(const FakeOpenAIServer& server, RecordedSleeps& sleeps) {
  EndpointSamplerOptions o;
  o.url = server.url();
  o.request.model = "teacher";
  o.concurrency = 2;
  o.timeout_s = 5;
  o.retry.initial_backoff_s = 0.25;
  o.retry.multiplier = 2;
  o.retry.jitter = 0;
  o.retry.max_attempts = 4;
  o.sleep = sleeps.function();
  return o;
}

// The question a chat request asks (its last message).
std::string asked(const json& body) {
  return body.contains("messages") ? body["messages"].back()["content"].get<std::string>() : body["prompt"].get<std::string>();
}

std::string temporary_path(const std::string& name) {
  const fs::path dir = fs::temp_directory_path() / ("grpo_api_sampler_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  return (dir / name).string();
}

std::vector<std::string> file_lines(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

}  // namespace

TEST_CASE("api: chat records keep reasoning and content apart, the completion wraps the reasoning, requests carry the options") {
  FakeOpenAIServer server([](int, const json& body, httplib::Response& response) {
    const std::string q = asked(body);
    reply_json(response, 200, chat_response({{"answer to " + q, "think " + q}, {"plain", ""}}, 30));
  });
  RecordedSleeps sleeps;
  EndpointSamplerOptions o = options_for(server, sleeps);
  o.api_key = "sk-test";
  o.request.n = 2;
  o.request.temperature = 0.7;
  o.request.top_p = 0.9;
  o.request.max_tokens = 64;
  o.request.stop = {"###"};
  o.request.seed = 100;
  const EndpointSampleResult r = sample_endpoint(text_prompts(3), o);

  REQUIRE(r.records.size() == 6);
  CHECK(r.failures.empty());
  CHECK(r.http_requests == 3);
  CHECK(r.retries == 0);
  for (int i = 0; i < 3; ++i) {
    const json& a = r.records[static_cast<size_t>(2 * i)];
    const json& b = r.records[static_cast<size_t>(2 * i + 1)];
    const std::string q = "question " + std::to_string(i);
    CHECK(a["prompt_index"] == i);
    CHECK(a["sample_index"] == 0);
    CHECK(b["sample_index"] == 1);
    CHECK(a["id"] == i);  // the dataset's fields stay
    CHECK(a["answer"] == std::to_string(i));
    CHECK(a["prompt"] == q);
    CHECK(a["content"] == "answer to " + q);
    CHECK(a["reasoning_content"] == "think " + q);
    CHECK(a["completion"] == "<think>\nthink " + q + "\n</think>\n\nanswer to " + q);
    CHECK(b["completion"] == "plain");
    CHECK(b["reasoning_content"] == "");
    CHECK(a["finish_reason"] == "stop");
    CHECK(a["messages"] == json::array({{{"role", "user"}, {"content", q}},
                                        {{"role", "assistant"}, {"content", "answer to " + q}, {"reasoning_content", "think " + q}}}));
    CHECK(b["messages"][1] == json{{"role", "assistant"}, {"content", "plain"}});
    // 30 tokens over the two choices by bytes: "answer to question i" + "think question i" = 20 + 16, "plain" = 5.
    CHECK(a["completion_tokens"].get<int64_t>() + b["completion_tokens"].get<int64_t>() == 30);
    CHECK(a["completion_tokens"] == 26);  // 30 * 36 / 41 = 26.3; 30 * 5 / 41 = 3.66 takes the remaining one
    CHECK(b["completion_tokens"] == 4);
  }
  std::set<uint64_t> seeds;
  for (const grpo::test::SeenRequest& s : server.seen()) {
    CHECK(s.path == "/v1/chat/completions");
    CHECK(s.authorization == "Bearer sk-test");
    CHECK(s.body["model"] == "teacher");
    CHECK(s.body["n"] == 2);
    CHECK(s.body["temperature"] == 0.7);
    CHECK(s.body["top_p"] == 0.9);
    CHECK(s.body["max_tokens"] == 64);
    CHECK(s.body["stop"] == json::array({"###"}));
    const int i = asked(s.body).back() - '0';
    CHECK(s.body["seed"] == 100 + i);  // prompt i sends seed + i
    seeds.insert(s.body["seed"].get<uint64_t>());
  }
  CHECK(seeds.size() == 3);
}

TEST_CASE("api: the completions API sends the prompt text and reads choices' text; no key, no Authorization header") {
  FakeOpenAIServer server([](int, const json& body, httplib::Response& response) {
    reply_json(response, 200, {{"choices", {{{"index", 0}, {"text", " => " + body["prompt"].get<std::string>()}, {"finish_reason", "length"}}}},
                               {"usage", {{"completion_tokens", 9}}}});
  });
  RecordedSleeps sleeps;
  EndpointSamplerOptions o = options_for(server, sleeps);
  o.api = ApiKind::Completions;
  const EndpointSampleResult r = sample_endpoint(text_prompts(2), o);
  REQUIRE(r.records.size() == 2);
  CHECK(r.records[1]["completion"] == " => question 1");
  CHECK(r.records[1]["finish_reason"] == "length");
  CHECK(r.records[1]["completion_tokens"] == 9);
  CHECK_FALSE(r.records[1].contains("messages"));
  for (const grpo::test::SeenRequest& s : server.seen()) {
    CHECK(s.path == "/v1/completions");
    CHECK(s.authorization == "");
    CHECK_FALSE(s.body.contains("seed"));
  }
}

TEST_CASE("api: a conversational prompt is sent as its messages and comes back as a prompt list with the assistant turn") {
  FakeOpenAIServer server([](int, const json&, httplib::Response& response) { reply_json(response, 200, chat_response({{"Paris", "capital"}}, 3)); });
  RecordedSleeps sleeps;
  EndpointSamplerOptions o = options_for(server, sleeps);
  const json messages = json::array({{{"role", "system"}, {"content", "Be brief."}}, {{"role", "user"}, {"content", "Capital of France?"}}});
  const EndpointSampleResult r = sample_endpoint({{"", messages, {{"messages", messages}}}}, o);
  REQUIRE(r.records.size() == 1);
  CHECK(server.seen()[0].body["messages"] == messages);
  CHECK(r.records[0]["prompt"] == messages);
  json expected = messages;
  expected.push_back({{"role", "assistant"}, {"content", "Paris"}, {"reasoning_content", "capital"}});
  CHECK(r.records[0]["messages"] == expected);
  o.api = ApiKind::Completions;
  CHECK_THROWS_WITH_AS(sample_endpoint({{"", messages, json::object()}}, o), doctest::Contains("prompt 1 is a message list"),
                       EndpointSamplingError);
}

TEST_CASE("api: a 429 is retried after the server's Retry-After, 5xx after the exponential backoff") {
  FakeOpenAIServer server([](int call, const json&, httplib::Response& response) {
    if (call == 0) {
      response.set_header("Retry-After", "0.5");
      reply_json(response, 429, {{"error", {{"message", "slow down"}}}});
    } else if (call == 1 || call == 2) {
      reply_json(response, 503, {{"error", {{"message", "overloaded"}}}});
    } else {
      reply_json(response, 200, chat_response({{"ok", ""}}, 1));
    }
  });
  RecordedSleeps sleeps;
  EndpointSamplerOptions o = options_for(server, sleeps);
  o.concurrency = 1;
  const EndpointSampleResult r = sample_endpoint(text_prompts(1), o);
  CHECK(r.records.size() == 1);
  CHECK(server.requests() == 4);
  CHECK(r.http_requests == 4);
  CHECK(r.retries == 3);
  // Retry-After 0.5, then 0.25 * 2^1 and 0.25 * 2^2 (retries 2 and 3; jitter off).
  CHECK(sleeps.seconds == std::vector<double>{0.5, 0.5, 1.0});
}

TEST_CASE("api: a prompt that fails every try is reported with its index and the server's message; the others are kept") {
  FakeOpenAIServer server([](int, const json& body, httplib::Response& response) {
    if (asked(body) == "question 1") return reply_json(response, 500, {{"error", {{"message", "CUDA out of memory"}}}});
    reply_json(response, 200, chat_response({{"ok", ""}}, 1));
  });
  RecordedSleeps sleeps;
  EndpointSamplerOptions o = options_for(server, sleeps);
  o.retry.max_attempts = 3;
  o.out_path = temporary_path("partial.jsonl");
  fs::remove(o.out_path);
  const EndpointSampleResult r = sample_endpoint(text_prompts(3), o);
  REQUIRE(r.failures.size() == 1);
  CHECK(r.failures[0].prompt_index == 1);
  CHECK(r.failures[0].status == 500);
  CHECK(r.failures[0].attempts == 3);
  CHECK(describe_failure(r.failures[0]) == "prompt 2 (prompt_index 1) failed after 3 tries: HTTP 500: CUDA out of memory");
  CHECK(server.requests() == 2 + 3);
  REQUIRE(r.records.size() == 2);
  CHECK(r.records[0]["prompt_index"] == 0);
  CHECK(r.records[1]["prompt_index"] == 2);
  CHECK(file_lines(o.out_path).size() == 2);
  CHECK(sleeps.seconds.size() == 2);

  // A rerun requests the failed prompt alone.
  FakeOpenAIServer healthy([](int, const json&, httplib::Response& response) { reply_json(response, 200, chat_response({{"late", ""}}, 1)); });
  o.url = healthy.url();
  const EndpointSampleResult again = sample_endpoint(text_prompts(3), o);
  CHECK(again.resumed == 2);
  CHECK(again.requested == 1);
  REQUIRE(healthy.requests() == 1);
  CHECK(asked(healthy.seen()[0].body) == "question 1");
  REQUIRE(again.records.size() == 3);
  CHECK(again.records[1]["completion"] == "late");
  fs::remove_all(fs::path(o.out_path).parent_path());
}

TEST_CASE("api: when every request fails the run fails, naming the first prompt and the server's message") {
  FakeOpenAIServer server([](int, const json&, httplib::Response& response) { reply_json(response, 502, {{"detail", "upstream down"}}); });
  RecordedSleeps sleeps;
  EndpointSamplerOptions o = options_for(server, sleeps);
  o.retry.max_attempts = 2;
  const std::string expected = "every one of the 2 prompts sent to " + server.url() +
                               " failed; the first: prompt 1 (prompt_index 0) failed after 2 tries: HTTP 502: upstream down";
  CHECK_THROWS_WITH_AS(sample_endpoint(text_prompts(2), o), doctest::Contains(expected.c_str()), EndpointSamplingError);
  CHECK(server.requests() == 4);
}

TEST_CASE("api: a response slower than the timeout is abandoned and retried") {
  FakeOpenAIServer server([](int call, const json&, httplib::Response& response) {
    if (call == 0) std::this_thread::sleep_for(std::chrono::milliseconds(1500));
    reply_json(response, 200, chat_response({{call == 0 ? "too late" : "in time", ""}}, 1));
  });
  RecordedSleeps sleeps;
  EndpointSamplerOptions o = options_for(server, sleeps);
  o.concurrency = 1;
  o.timeout_s = 0.3;
  const EndpointSampleResult r = sample_endpoint(text_prompts(1), o);
  REQUIRE(r.records.size() == 1);
  CHECK(r.records[0]["completion"] == "in time");
  CHECK(r.retries == 1);
  CHECK(server.requests() == 2);
  CHECK(sleeps.seconds == std::vector<double>{0.25});
}

TEST_CASE("api: a malformed answer fails its prompt without retries, saying what was wrong") {
  FakeOpenAIServer server([](int, const json& body, httplib::Response& response) {
    if (asked(body) == "question 0") {
      response.status = 200;
      response.set_content("{\"choices\": [{\"message\": ", "application/json");
      return;
    }
    reply_json(response, 200, chat_response({{"ok", ""}}, 1));
  });
  RecordedSleeps sleeps;
  EndpointSamplerOptions o = options_for(server, sleeps);
  const EndpointSampleResult r = sample_endpoint(text_prompts(2), o);
  REQUIRE(r.failures.size() == 1);
  CHECK(r.failures[0].prompt_index == 0);
  CHECK(r.failures[0].attempts == 1);
  CHECK(r.failures[0].message.find("not an OpenAI response: the response is not JSON") != std::string::npos);
  CHECK(server.requests() == 2);
  CHECK(sleeps.seconds.empty());
}

TEST_CASE("api: a refused key stops the run at the first answer, with the server's message") {
  FakeOpenAIServer server([](int, const json&, httplib::Response& response) {
    reply_json(response, 401, {{"error", {{"message", "Incorrect API key provided"}, {"type", "invalid_request_error"}}}});
  });
  RecordedSleeps sleeps;
  EndpointSamplerOptions o = options_for(server, sleeps);
  o.concurrency = 1;
  o.api_key = "wrong";
  CHECK_THROWS_WITH_AS(sample_endpoint(text_prompts(5), o),
                       doctest::Contains("prompt 1 (prompt_index 0) failed after 1 try: HTTP 401: Incorrect API key provided (the API key "
                                         "was refused"),
                       EndpointSamplingError);
  CHECK(server.requests() == 1);
  CHECK(sleeps.seconds.empty());
}

TEST_CASE("api: at most `concurrency` requests are in flight") {
  FakeOpenAIServer server([](int, const json&, httplib::Response& response) {
    std::this_thread::sleep_for(std::chrono::milliseconds(40));
    reply_json(response, 200, chat_response({{"ok", ""}}, 1));
  });
  RecordedSleeps sleeps;
  EndpointSamplerOptions o = options_for(server, sleeps);
  o.concurrency = 3;
  size_t last_settled = 0;
  bool in_order = true;
  o.progress = [&](size_t settled, size_t total) {
    in_order = in_order && settled == last_settled + 1 && total == 12;
    last_settled = settled;
  };
  const EndpointSampleResult r = sample_endpoint(text_prompts(12), o);
  CHECK(r.records.size() == 12);
  CHECK(server.requests() == 12);
  CHECK(server.max_in_flight() <= 3);
  CHECK(server.max_in_flight() >= 2);
  CHECK(in_order);
  CHECK(last_settled == 12);
  for (size_t i = 0; i < 12; ++i) CHECK(r.records[i]["prompt_index"] == static_cast<int64_t>(i));  // prompt order
}

TEST_CASE("api: a server that ignores n is asked again for the rest, each further request with its own seed") {
  FakeOpenAIServer server([](int call, const json&, httplib::Response& response) {
    reply_json(response, 200, chat_response({{"choice " + std::to_string(call), ""}}, 2));
  });
  RecordedSleeps sleeps;
  EndpointSamplerOptions o = options_for(server, sleeps);
  o.concurrency = 1;
  o.request.n = 3;
  o.request.seed = 10;
  const EndpointSampleResult r = sample_endpoint(text_prompts(2), o);
  REQUIRE(r.records.size() == 6);
  CHECK(server.requests() == 6);
  std::vector<int64_t> ns, seeds;
  for (const grpo::test::SeenRequest& s : server.seen()) {
    ns.push_back(s.body["n"].get<int64_t>());
    seeds.push_back(s.body["seed"].get<int64_t>());
  }
  CHECK(ns == std::vector<int64_t>{3, 2, 1, 3, 2, 1});
  // prompt i, further request k: 10 + i + k * 2 prompts.
  CHECK(seeds == std::vector<int64_t>{10, 12, 14, 11, 13, 15});
  CHECK(r.records[2]["sample_index"] == 2);
  CHECK(r.records[2]["completion"] == "choice 2");
}

TEST_CASE("api: a rerun after a kill requests only the prompts missing from the file and writes no duplicate") {
  const std::string path = temporary_path("killed.jsonl");
  fs::remove(path);
  RecordedSleeps sleeps;
  {
    // What a killed run leaves: prompts 0 and 2 whole, prompt 3's first sample, a torn line.
    FakeOpenAIServer first([](int, const json& body, httplib::Response& response) {
      reply_json(response, 200, chat_response({{"first " + asked(body), ""}, {"second " + asked(body), ""}}, 4));
    });
    EndpointSamplerOptions o = options_for(first, sleeps);
    o.request.n = 2;
    std::vector<EndpointPrompt> prompts = text_prompts(4);
    const EndpointSampleResult all = sample_endpoint(prompts, o);
    std::ofstream out(path, std::ios::trunc);
    for (size_t k : {0, 1, 4, 5, 6}) out << all.records[k].dump() << "\n";
    out << all.records[7].dump().substr(0, 20);
  }
  FakeOpenAIServer server([](int, const json& body, httplib::Response& response) {
    reply_json(response, 200, chat_response({{"first " + asked(body), ""}, {"second " + asked(body), ""}}, 4));
  });
  EndpointSamplerOptions o = options_for(server, sleeps);
  o.request.n = 2;
  o.out_path = path;
  const EndpointSampleResult r = sample_endpoint(text_prompts(4), o);
  CHECK(r.resumed == 2);
  CHECK(r.requested == 2);
  std::multiset<std::string> asked_again;
  for (const grpo::test::SeenRequest& s : server.seen()) asked_again.insert(asked(s.body));
  CHECK(asked_again == std::multiset<std::string>{"question 1", "question 3"});
  const std::vector<std::string> lines = file_lines(path);
  REQUIRE(lines.size() == 8);
  for (size_t k = 0; k < 8; ++k) {
    const json record = json::parse(lines[k]);
    CHECK(record["prompt_index"] == static_cast<int64_t>(k / 2));
    CHECK(record["sample_index"] == static_cast<int64_t>(k % 2));
    CHECK(record == r.records[k]);
  }
  // A file written for other prompts is refused rather than mixed in.
  std::vector<EndpointPrompt> other = text_prompts(4);
  other[0].text = "another question";
  CHECK_THROWS_WITH_AS(sample_endpoint(other, o), doctest::Contains("records of prompt_index 0 answer another prompt"), EndpointSamplingError);
  fs::remove_all(fs::path(path).parent_path());
}

TEST_CASE("api: nothing listening is a connection error, retried, then reported") {
  // A port the OS hands out, closed again before the request: nothing listens there.
  int port = 0;
  {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0);
    socklen_t length = sizeof(address);
    REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0);
    port = ntohs(address.sin_port);
    ::close(fd);
  }
  RecordedSleeps sleeps;
  EndpointSamplerOptions o;
  o.url = "http://127.0.0.1:" + std::to_string(port) + "/v1";
  o.request.model = "m";
  o.timeout_s = 2;
  o.retry.max_attempts = 2;
  o.retry.jitter = 0;
  o.retry.initial_backoff_s = 0.1;
  o.sleep = sleeps.function();
  CHECK_THROWS_WITH_AS(sample_endpoint(text_prompts(1), o), doctest::Contains("failed after 2 tries: could not connect (nothing listening there"),
                       EndpointSamplingError);
  CHECK(sleeps.seconds == std::vector<double>{0.1});
  EndpointSamplerOptions bad = o;
  bad.url = "localhost:8000";
  CHECK_THROWS_WITH_AS(sample_endpoint(text_prompts(1), bad), doctest::Contains("no scheme"), EndpointError);
}

TEST_CASE("api: without an injected sleep the workers wait themselves (Retry-After 0: at once)") {
  FakeOpenAIServer server([](int call, const json&, httplib::Response& response) {
    if (call == 0) {
      response.set_header("Retry-After", "0");
      return reply_json(response, 429, {{"error", {{"message", "busy"}}}});
    }
    reply_json(response, 200, chat_response({{"ok", ""}}, 1));
  });
  EndpointSamplerOptions o;
  o.url = server.url();
  o.request.model = "teacher";
  o.concurrency = 1;
  const EndpointSampleResult r = sample_endpoint(text_prompts(1), o);
  CHECK(r.records.size() == 1);
  CHECK(r.retries == 1);
  CHECK(server.requests() == 2);
}

TEST_CASE("api: finish_records sees each prompt's records once, never two prompts at a time, before they are written") {
  FakeOpenAIServer server([](int, const json& body, httplib::Response& response) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    reply_json(response, 200, chat_response({{"a " + asked(body), ""}, {"b " + asked(body), ""}}, 2));
  });
  RecordedSleeps sleeps;
  EndpointSamplerOptions o = options_for(server, sleeps);
  o.concurrency = 4;
  o.request.n = 2;
  o.out_path = temporary_path("scored.jsonl");
  fs::remove(o.out_path);
  std::atomic<int> inside{0}, most_inside{0}, calls{0};
  o.finish_records = [&](std::vector<json>& records) {
    most_inside = std::max(most_inside.load(), ++inside);
    ++calls;
    REQUIRE(records.size() == 2);
    for (json& r : records) r["score"] = r["completion"].get<std::string>().size();  // "a question i" -> 12
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    --inside;
  };
  const EndpointSampleResult r = sample_endpoint(text_prompts(8), o);
  CHECK(calls == 8);
  CHECK(most_inside == 1);
  const std::vector<std::string> lines = file_lines(o.out_path);
  REQUIRE(lines.size() == 16);
  for (const std::string& line : lines) CHECK(json::parse(line)["score"] == 12);
  CHECK(r.records[3]["score"] == 12);
  fs::remove_all(fs::path(o.out_path).parent_path());
}
