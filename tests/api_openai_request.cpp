// The request and response bodies of the OpenAI API as the endpoint client writes and reads them
// (api/client/openai_request.h), and the endpoint URL's shape (api/client/openai_client.h).
#include <doctest/doctest.h>

#include "api/client/openai_client.h"
#include "api/client/openai_request.h"

using namespace grpo::api;
using nlohmann::json;

TEST_CASE("api: a chat request carries the sampling fields under OpenAI's names; top_k, stop and seed only when set") {
  SamplingRequest r;
  r.model = "teacher";
  r.n = 4;
  r.temperature = 0.6;
  r.top_p = 0.95;
  r.max_tokens = 100;
  const json messages = json::array({{{"role", "user"}, {"content", "2+2?"}}});
  json body = chat_request_body(r, messages);
  CHECK(body == json{{"model", "teacher"}, {"n", 4}, {"temperature", 0.6}, {"top_p", 0.95}, {"max_tokens", 100}, {"messages", messages}});
  r.top_k = 20;
  r.stop = {"</answer>"};
  r.seed = 7;
  body = completion_request_body(r, "Q: 2+2?");
  CHECK(body["prompt"] == "Q: 2+2?");
  CHECK(body["top_k"] == 20);
  CHECK(body["stop"] == json::array({"</answer>"}));
  CHECK(body["seed"] == 7);
  CHECK_FALSE(body.contains("messages"));
  CHECK(std::string(api_path(ApiKind::Chat)) == "/chat/completions");
  CHECK(std::string(api_path(ApiKind::Completions)) == "/completions");
}

TEST_CASE("api: chat choices keep content and reasoning apart, in index order; null content reads as empty") {
  const std::string body = R"({"choices": [
      {"index": 1, "message": {"role": "assistant", "content": null, "reasoning": "only thoughts"}, "finish_reason": "length"},
      {"index": 0, "message": {"role": "assistant", "content": "4", "reasoning_content": "2+2 is 4"}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 3, "completion_tokens": 17}})";
  const ParsedResponse r = parse_response(ApiKind::Chat, body);
  REQUIRE(r.choices.size() == 2);
  CHECK(r.choices[0].content == "4");
  CHECK(r.choices[0].reasoning_content == std::optional<std::string>("2+2 is 4"));
  CHECK(r.choices[0].finish_reason == "stop");
  CHECK(r.choices[1].content == "");
  CHECK(r.choices[1].reasoning_content == std::optional<std::string>("only thoughts"));
  CHECK(r.choices[1].finish_reason == "length");
  CHECK(r.completion_tokens == std::optional<int64_t>(17));
  const ParsedResponse c = parse_response(ApiKind::Completions, R"({"choices": [{"text": " 4", "finish_reason": "stop"}]})");
  REQUIRE(c.choices.size() == 1);
  CHECK(c.choices[0].content == " 4");
  CHECK_FALSE(c.choices[0].reasoning_content);
  CHECK_FALSE(c.completion_tokens);
}

TEST_CASE("api: a body that is not an OpenAI response is a ResponseError saying what is wrong") {
  CHECK_THROWS_WITH_AS(parse_response(ApiKind::Chat, "{\"choices\": [tru"), doctest::Contains("not JSON"), ResponseError);
  CHECK_THROWS_WITH_AS(parse_response(ApiKind::Chat, "{\"object\": \"list\"}"), doctest::Contains("no \"choices\" list"), ResponseError);
  CHECK_THROWS_WITH_AS(parse_response(ApiKind::Chat, "{\"choices\": [{\"text\": \"x\"}]}"), doctest::Contains("choices[0] has no \"message\""),
                       ResponseError);
  CHECK_THROWS_WITH_AS(parse_response(ApiKind::Completions, "{\"choices\": [{\"message\": {}}]}"),
                       doctest::Contains("choices[0] has no \"text\""), ResponseError);
  CHECK_THROWS_WITH_AS(parse_response(ApiKind::Chat, "{\"choices\": [{\"message\": {\"content\": 3}}]}"),
                       doctest::Contains("choices[0].message.content must be a string"), ResponseError);
}

TEST_CASE("api: the server's error message is found in the shapes servers use") {
  CHECK(server_error_message(R"({"error": {"message": "Invalid API key", "type": "auth"}})") == "Invalid API key");
  CHECK(server_error_message(R"({"error": "model not loaded"})") == "model not loaded");
  CHECK(server_error_message(R"({"detail": "Not Found"})") == "Not Found");
  CHECK(server_error_message("Bad Gateway") == "Bad Gateway");
  CHECK(server_error_message(std::string(400, 'x')) == std::string(300, 'x') + "...");
}

TEST_CASE("api: usage tokens are shared over the choices by text length and add up to the total") {
  std::vector<ResponseChoice> choices(3);
  choices[0].content = "aaaa";               // 4 bytes
  choices[1].content = "bb";                 // 2 + 4 of reasoning = 6
  choices[1].reasoning_content = "rrrr";
  choices[2].content = "";                   // 0
  // 10 tokens over weights 4:6:0 -> exactly 4, 6, 0.
  CHECK(share_completion_tokens(10, choices) == std::vector<int64_t>{4, 6, 0});
  // 11 tokens: 4.4, 6.6, 0 -> floors 4, 6 and the one left over goes to the largest remainder (0.6).
  CHECK(share_completion_tokens(11, choices) == std::vector<int64_t>{4, 7, 0});
  std::vector<ResponseChoice> empty(2);
  CHECK(share_completion_tokens(5, empty) == std::vector<int64_t>{3, 2});
  CHECK(share_completion_tokens(0, choices) == std::vector<int64_t>{0, 0, 0});
}

TEST_CASE("api: the endpoint URL is a base URL: http(s), a host, an optional port and path") {
  EndpointUrl u = parse_endpoint_url("http://127.0.0.1:8000/v1/");
  CHECK(u.scheme_host_port == "http://127.0.0.1:8000");
  CHECK(u.base_path == "/v1");
  u = parse_endpoint_url("https://api.deepseek.com");
  CHECK(u.scheme_host_port == "https://api.deepseek.com");
  CHECK(u.base_path == "");
  CHECK_THROWS_WITH_AS(parse_endpoint_url("127.0.0.1:8000/v1"), doctest::Contains("no scheme"), EndpointError);
  CHECK_THROWS_WITH_AS(parse_endpoint_url("ftp://host/v1"), doctest::Contains("must be http or https"), EndpointError);
  CHECK_THROWS_WITH_AS(parse_endpoint_url("http:///v1"), doctest::Contains("no host"), EndpointError);
  CHECK_THROWS_WITH_AS(parse_endpoint_url("http://host:80x/v1"), doctest::Contains("port \"80x\""), EndpointError);
  CHECK_THROWS_WITH_AS(parse_endpoint_url("http://host:99999"), doctest::Contains("1 to 65535"), EndpointError);
  CHECK_THROWS_WITH_AS(parse_endpoint_url("http://host:8000/v1/chat/completions"), doctest::Contains("without \"/chat/completions\""),
                       EndpointError);
  CHECK_THROWS_WITH_AS(parse_endpoint_url("http://user:key@host/v1"), doctest::Contains("API key variable"), EndpointError);
}
