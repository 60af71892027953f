// The protocol pieces on their own: the reasoning split streamed in pieces cut anywhere against
// hand-worked splits, server-sent events read back from bytes cut anywhere, and request defaults.
#include <doctest/doctest.h>

#include "api/completion_request.h"
#include "api/openai_errors.h"
#include "api/reasoning_split.h"
#include "api/server_sent_events.h"

using namespace grpo::api;

TEST_CASE("the reasoning split of a text cut into pieces anywhere equals the hand-worked split") {
  struct Case {
    std::string text;
    bool opens;
    std::string reasoning, content;
  };
  const std::vector<Case> cases = {
      {"abc</think>\n\nthe answer", true, "abc", "the answer"},  // R1: the prompt opened the block
      {"  <think>x y</think>z", false, "x y", "z"},              // Qwen3: the model opens it
      {"hello <think>", false, "", "hello <think>"},             // no block at the start: all content
      {"still thinking", true, "still thinking", ""},            // cut off while thinking
      {"<thi", false, "", "<thi"},                               // a partial marker that never completes
      {"a</thin", true, "a</thin", ""},
      {"</think>", true, "", ""},
      {"<think></think></think>b", false, "", "</think>b"},
  };
  const ReasoningMarkers markers;
  for (const Case& k : cases) {
    CAPTURE(k.text);
    ReasoningParts whole = split_reasoning(k.text, markers, k.opens);
    CHECK(whole.reasoning == k.reasoning);
    CHECK(whole.content == k.content);
    for (size_t a = 0; a <= k.text.size(); ++a)
      for (size_t b = a; b <= k.text.size(); ++b) {
        ReasoningSplitter s(markers, k.opens);
        std::string reasoning, content;
        for (const std::string& piece : {k.text.substr(0, a), k.text.substr(a, b - a), k.text.substr(b)}) {
          ReasoningParts p = s.push(piece);
          CHECK((p.reasoning.empty() || content.empty()));  // reasoning never follows content
          reasoning += p.reasoning;
          content += p.content;
        }
        ReasoningParts rest = s.finish();
        CHECK(reasoning + rest.reasoning == k.reasoning);
        CHECK(content + rest.content == k.content);
      }
  }
  CHECK(prompt_opens_reasoning("<|Assistant|><think>\n", markers));
  CHECK(!prompt_opens_reasoning("<|im_start|>assistant\n<think>\n\n</think>\n\n", markers));
  CHECK(!prompt_opens_reasoning("<|im_start|>assistant\n", markers));
}

TEST_CASE("server-sent events are read back from a byte stream cut anywhere") {
  const std::string stream = sse_event("{\"a\":1}") + kSseKeepAlive + "data: two\r\ndata: lines\r\n\r\n" + sse_event("{}") + kSseDone;
  const std::vector<std::string> expected = {"{\"a\":1}", "two\nlines", "{}", "[DONE]"};
  for (size_t cut = 0; cut <= stream.size(); ++cut) {
    SseReader reader;
    std::vector<std::string> got = reader.push(stream.substr(0, cut));
    for (std::string& e : reader.push(stream.substr(cut))) got.push_back(e);
    CHECK(got == expected);
  }
}

TEST_CASE("a request's defaults, and max_completion_tokens before max_tokens") {
  CompletionRequest r = parse_completion_request(RequestKind::ChatCompletions,
                                                 R"({"model": "m", "messages": [{"role": "developer", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}],
                                                     "max_tokens": 5, "max_completion_tokens": 7, "seed": -1})",
                                                 {});
  CHECK(r.n == 1);
  CHECK(r.temperature == 1.0);
  CHECK(r.top_p == 1.0);
  CHECK(!r.stream);
  CHECK(r.max_tokens == 7);
  CHECK(r.seed == UINT64_MAX);  // OpenAI's seeds are signed: -1 is the same 64 bits
  REQUIRE(r.messages.size() == 1);
  CHECK(r.messages[0].role == "system");
  CHECK(r.messages[0].content == "ab");
  CompletionRequest c = parse_completion_request(RequestKind::Completions, R"({"model": "m", "prompt": [5, 6], "logprobs": 3})", {});
  CHECK(c.prompt_ids == std::vector<int32_t>{5, 6});
  CHECK(c.logprobs);
  CHECK(c.top_logprobs == 3);
  try {
    parse_completion_request(RequestKind::Completions, R"({"model": "m", "prompt": "x", "n": 9})", {/*max_n=*/8});
    FAIL("n above the server's rows was accepted");
  } catch (const ApiError& e) {
    CHECK(e.status == 400);
    CHECK(e.param == "n");
    CHECK(std::string(e.what()).find("1 to 8") != std::string::npos);
  }
}
