#pragma once
// Server-sent events as OpenAI's streaming API uses them: each chunk is one event "data: <json>\n\n",
// and the stream ends with "data: [DONE]\n\n". SseReader takes the bytes of such a stream in pieces
// of any size and returns the data of each complete event (comment lines ": ..." are skipped).
#include <string>
#include <string_view>
#include <vector>

namespace grpo::api {

std::string sse_event(std::string_view data);
inline const char* const kSseDone = "data: [DONE]\n\n";
// A comment line: keeps a connection alive and finds a client that has gone, without an event.
inline const char* const kSseKeepAlive = ": keep-alive\n\n";

class SseReader {
 public:
  // The data of the events that `bytes` completes.
  std::vector<std::string> push(std::string_view bytes);

 private:
  std::string buffer_;
};

}  // namespace grpo::api
