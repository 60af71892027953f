#include "api/server_sent_events.h"

namespace grpo::api {

std::string sse_event(std::string_view data) {
  std::string out = "data: ";
  out.append(data);
  out += "\n\n";
  return out;
}

std::vector<std::string> SseReader::push(std::string_view bytes) {
  buffer_.append(bytes);
  std::vector<std::string> events;
  for (;;) {
    // Events end at a blank line; "\r\n" line ends are read as "\n".
    size_t end = buffer_.find("\n\n");
    size_t crlf = buffer_.find("\r\n\r\n");
    size_t skip = 2;
    if (crlf != std::string::npos && (end == std::string::npos || crlf < end)) end = crlf, skip = 4;
    if (end == std::string::npos) return events;
    std::string block = buffer_.substr(0, end);
    buffer_.erase(0, end + skip);
    std::string data;
    bool has_data = false;
    size_t start = 0;
    while (start <= block.size()) {
      size_t nl = block.find('\n', start);
      std::string line = block.substr(start, nl == std::string::npos ? std::string::npos : nl - start);
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (line.rfind("data:", 0) == 0) {
        std::string value = line.substr(5);
        if (!value.empty() && value[0] == ' ') value.erase(0, 1);
        if (has_data) data += "\n";
        data += value;
        has_data = true;
      }
      if (nl == std::string::npos) break;
      start = nl + 1;
    }
    if (has_data) events.push_back(std::move(data));
  }
}

}  // namespace grpo::api
