// The metrics log: metrics.jsonl and TensorBoard event files beside it. The event files are read back
// by an independent decoder (tests/tools/read_tfevents.py: bitwise CRC-32C, Debian's python3-protobuf
// with the published Event/Summary field definitions compiled by protoc), and a resumed log holds
// every step exactly once in both files.
#include <doctest/doctest.h>

#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "rl/experiment/metrics_log.h"
#include "rl/experiment/tensorboard_events.h"

using namespace grpo;
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

fs::path fresh_log_directory(const std::string& name) {
  fs::path dir = fs::temp_directory_path() / ("grpo_metrics_log_" + name + "_" + std::to_string(getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

// The decoder's output for the one grpo event file in `dir`, one JSON object per event.
std::vector<json> decoded_events(const fs::path& dir) {
  std::vector<std::string> files = grpo_event_files(dir.string());
  REQUIRE(files.size() == 1);
  const std::string command = std::string("/usr/bin/python3 ") + GRPO_SOURCE_DIR + "/tests/tools/read_tfevents.py " + files[0] +
                              " " + GRPO_SOURCE_DIR + "/tests/fixtures/tensorboard";
  FILE* pipe = popen(command.c_str(), "r");
  REQUIRE(pipe != nullptr);
  std::string text;
  char buffer[4096];
  while (size_t n = fread(buffer, 1, sizeof buffer, pipe)) text.append(buffer, n);
  REQUIRE(pclose(pipe) == 0);
  std::vector<json> events;
  size_t start = 0;
  for (size_t end; (end = text.find('\n', start)) != std::string::npos; start = end + 1)
    events.push_back(json::parse(text.substr(start, end - start)));
  return events;
}

std::vector<json> jsonl_lines(const fs::path& path) {
  std::ifstream in(path);
  std::vector<json> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(json::parse(line));
  return lines;
}

}  // namespace

TEST_CASE("crc32c: the standard check value and TFRecord's masking") {
  const std::string digits = "123456789";
  CHECK(crc32c(digits.data(), digits.size()) == 0xE3069283u);  // CRC-32C's published check value
  CHECK(crc32c("", 0) == 0u);
  const uint32_t crc = 0xE3069283u;
  CHECK(masked_crc32c(digits.data(), digits.size()) == static_cast<uint32_t>(((crc >> 15) | (crc << 17)) + 0xa282ead8u));
}

TEST_CASE("tfrecord: length, its CRC, the data and its CRC, little-endian") {
  const std::string record = tfrecord("abc");
  REQUIRE(record.size() == 8 + 4 + 3 + 4);
  CHECK(static_cast<unsigned char>(record[0]) == 3);
  for (int i = 1; i < 8; ++i) CHECK(record[i] == 0);
  CHECK(record.substr(12, 3) == "abc");
}

TEST_CASE("metrics log: TensorBoard scalars match metrics.jsonl, as an independent decoder reads them") {
  const fs::path dir = fresh_log_directory("scalars");
  {
    MetricsLog log(dir.string());
    log.write(1, {{"reward", 0.25}, {"rewards/accuracy", 0.5}, {"grad_norm", NAN}});
    log.write(2, {{"reward", 0.75}, {"rewards/accuracy", 1.0}, {"grad_norm", 3.5}});
  }
  const std::vector<json> lines = jsonl_lines(dir / "metrics.jsonl");
  REQUIRE(lines.size() == 2);
  CHECK(lines[0]["step"] == 1);
  CHECK(lines[1]["reward"] == 0.75);

  const std::vector<json> events = decoded_events(dir);
  REQUIRE(events.size() == 3);
  CHECK(events[0]["file_version"] == "brain.Event:2");
  CHECK(events[0]["wall_time_positive"] == true);
  CHECK(events[1]["step"] == 1);
  CHECK(events[1]["scalars"]["reward"] == 0.25);
  CHECK(events[1]["scalars"]["rewards/accuracy"] == 0.5);
  CHECK(events[1]["scalars"]["grad_norm"].is_null());  // NaN survives as NaN
  CHECK(events[2]["step"] == 2);
  CHECK(events[2]["scalars"]["grad_norm"] == 3.5);
  CHECK(events[2]["scalars"].size() == 3);  // "step" itself is not a scalar
}

TEST_CASE("metrics log: resuming at a checkpoint's offset logs every step once in both files") {
  const fs::path dir = fresh_log_directory("resume");
  int64_t checkpoint_bytes = 0;
  {
    MetricsLog log(dir.string());
    log.write(1, {{"loss", 4.0}});
    log.write(2, {{"loss", 3.0}});
    checkpoint_bytes = log.bytes();
    log.write(3, {{"loss", 2.5}});  // written after the checkpoint, then the run was killed
  }
  CHECK(checkpoint_bytes == static_cast<int64_t>(jsonl_lines(dir / "metrics.jsonl")[0].dump().size() +
                                                 jsonl_lines(dir / "metrics.jsonl")[1].dump().size() + 2));
  {
    MetricsLog log(dir.string(), checkpoint_bytes);
    CHECK(log.bytes() == checkpoint_bytes);
    log.write(3, {{"loss", 2.0}});
  }
  const std::vector<json> lines = jsonl_lines(dir / "metrics.jsonl");
  REQUIRE(lines.size() == 3);
  CHECK(lines[2]["loss"] == 2.0);
  const std::vector<json> events = decoded_events(dir);
  REQUIRE(events.size() == 4);
  CHECK(events[1]["scalars"]["loss"] == 4.0);
  CHECK(events[2]["scalars"]["loss"] == 3.0);
  CHECK(events[3]["step"] == 3);
  CHECK(events[3]["scalars"]["loss"] == 2.0);
}
