#include "rl/experiment/tensorboard_events.h"

#include <fmt/core.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <stdexcept>

namespace grpo {
namespace {

namespace fs = std::filesystem;

// ---------------------------------------------------------------------------------------------
// CRC-32C, one table lookup per byte
// ---------------------------------------------------------------------------------------------

std::array<uint32_t, 256> crc32c_table() {
  std::array<uint32_t, 256> table{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int bit = 0; bit < 8; ++bit) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
    table[i] = c;
  }
  return table;
}

// ---------------------------------------------------------------------------------------------
// Protocol buffer encoding: field key = (field number << 3) | wire type
// ---------------------------------------------------------------------------------------------

enum WireType : uint32_t { kVarint = 0, kFixed64 = 1, kLengthDelimited = 2, kFixed32 = 5 };

void put_varint(std::string& out, uint64_t value) {
  while (value >= 0x80) {
    out.push_back(static_cast<char>((value & 0x7F) | 0x80));
    value >>= 7;
  }
  out.push_back(static_cast<char>(value));
}

void put_key(std::string& out, uint32_t field, WireType type) { put_varint(out, (uint64_t{field} << 3) | type); }

template <typename T>
void put_little_endian(std::string& out, T value) {  // the host is little-endian (x86-64, aarch64)
  char bytes[sizeof(T)];
  std::memcpy(bytes, &value, sizeof(T));
  out.append(bytes, sizeof(T));
}

void put_bytes(std::string& out, uint32_t field, const std::string& bytes) {
  put_key(out, field, kLengthDelimited);
  put_varint(out, bytes.size());
  out += bytes;
}

// Event fields (event.proto): wall_time = 1 (double), step = 2 (int64), file_version = 3 (string),
// summary = 5 (Summary). Summary: value = 1 (repeated Value). Value: tag = 1 (string), simple_value = 2
// (float).
std::string event_header(double wall_time, int64_t step) {
  std::string event;
  put_key(event, 1, kFixed64);
  put_little_endian(event, wall_time);
  if (step != 0) {  // proto3 leaves default values out
    put_key(event, 2, kVarint);
    put_varint(event, static_cast<uint64_t>(step));  // negative steps: two's complement, ten bytes
  }
  return event;
}

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

}  // namespace

uint32_t crc32c(const void* data, size_t size) {
  static const std::array<uint32_t, 256> table = crc32c_table();
  const auto* bytes = static_cast<const unsigned char*>(data);
  uint32_t crc = 0xFFFFFFFFu;
  for (size_t i = 0; i < size; ++i) crc = table[(crc ^ bytes[i]) & 0xFF] ^ (crc >> 8);
  return crc ^ 0xFFFFFFFFu;
}

uint32_t masked_crc32c(const void* data, size_t size) {
  const uint32_t crc = crc32c(data, size);
  return ((crc >> 15) | (crc << 17)) + 0xa282ead8u;
}

std::string file_version_event(double wall_time) {
  std::string event = event_header(wall_time, 0);
  put_bytes(event, 3, "brain.Event:2");
  return event;
}

std::string scalars_event(double wall_time, int64_t step, const std::vector<std::pair<std::string, float>>& scalars) {
  std::string summary;
  for (const auto& [tag, value] : scalars) {
    std::string v;
    put_bytes(v, 1, tag);
    put_key(v, 2, kFixed32);
    put_little_endian(v, value);
    put_bytes(summary, 1, v);
  }
  std::string event = event_header(wall_time, step);
  put_bytes(event, 5, summary);
  return event;
}

std::string tfrecord(const std::string& data) {
  std::string record;
  const uint64_t length = data.size();
  put_little_endian(record, length);
  put_little_endian(record, masked_crc32c(record.data(), sizeof length));
  record += data;
  put_little_endian(record, masked_crc32c(data.data(), data.size()));
  return record;
}

EventFileWriter::EventFileWriter(const std::string& directory) {
  char host[256] = "localhost";
  gethostname(host, sizeof host - 1);
  const double start = now_seconds();
  path_ = (fs::path(directory) / fmt::format("events.out.tfevents.{}.{}.grpo", static_cast<int64_t>(start), host)).string();
  out_.open(path_, std::ios::binary | std::ios::trunc);
  out_ << tfrecord(file_version_event(start));
  flush();
}

void EventFileWriter::add_scalars(int64_t step, const std::vector<std::pair<std::string, float>>& scalars) {
  out_ << tfrecord(scalars_event(now_seconds(), step, scalars));
}

void EventFileWriter::flush() {
  if (!out_.flush()) throw std::runtime_error(fmt::format("{}: cannot write the TensorBoard event file", path_));
}

std::vector<std::string> grpo_event_files(const std::string& directory) {
  std::vector<std::string> files;
  if (!fs::is_directory(directory)) return files;
  for (const fs::directory_entry& e : fs::directory_iterator(directory)) {
    const std::string name = e.path().filename().string();
    if (name.rfind("events.out.tfevents.", 0) == 0 && e.path().extension() == ".grpo") files.push_back(e.path().string());
  }
  return files;
}

}  // namespace grpo
