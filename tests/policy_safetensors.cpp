// Safetensors: a file written byte by byte here parses to known values; round trips are bit-exact;
// truncated and corrupted files give errors that name the problem, never a crash.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "policy/safetensors.h"

using namespace grpo;
namespace fs = std::filesystem;

namespace {

std::string temp_path(const std::string& name) {
  fs::path dir = fs::temp_directory_path() / "grpo_safetensors_test";
  fs::create_directories(dir);
  return (dir / name).string();
}

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

// Header length as 8 little-endian bytes, then the header, then data.
std::string file_bytes(const std::string& header, const std::string& data) {
  std::string out;
  uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((n >> (8 * i)) & 0xff));
  return out + header + data;
}

std::string open_error(const std::string& path) {
  try {
    SafetensorsFile::open(path);
  } catch (const SafetensorsError& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("a hand-written file parses to the values written") {
  // F32 [2] = {1.0, -2.5}; BF16 [1] = 0x3FC0 (1.5); I64 [1] = 7.
  std::string data;
  const unsigned char f32[] = {0x00, 0x00, 0x80, 0x3f, 0x00, 0x00, 0x20, 0xc0};
  data.append(reinterpret_cast<const char*>(f32), 8);
  const unsigned char bf16[] = {0xc0, 0x3f};
  data.append(reinterpret_cast<const char*>(bf16), 2);
  const unsigned char i64[] = {7, 0, 0, 0, 0, 0, 0, 0};
  data.append(reinterpret_cast<const char*>(i64), 8);
  std::string header = R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                       R"("b":{"dtype":"BF16","shape":[1,1],"data_offsets":[8,10]},)"
                       R"("c":{"dtype":"I64","shape":[],"data_offsets":[10,18]},)"
                       R"("__metadata__":{"format":"pt"}})";
  std::string path = temp_path("hand.safetensors");
  write_bytes(path, file_bytes(header, data));

  auto file = SafetensorsFile::open(path);
  REQUIRE(file->tensors().size() == 3);
  CHECK(file->metadata().at("format") == "pt");
  const TensorInfo* a = file->find("a");
  REQUIRE(a);
  CHECK(a->dtype == DType::F32);
  CHECK(a->shape == std::vector<int64_t>{2});
  float values[2];
  std::memcpy(values, file->data(*a), 8);
  CHECK(values[0] == 1.0f);
  CHECK(values[1] == -2.5f);
  const TensorInfo* b = file->find("b");
  REQUIRE(b);
  CHECK(b->shape == std::vector<int64_t>{1, 1});
  uint16_t raw;
  std::memcpy(&raw, file->data(*b), 2);
  uint32_t as_f32 = static_cast<uint32_t>(raw) << 16;  // bf16 is the top half of an f32
  float f;
  std::memcpy(&f, &as_f32, 4);
  CHECK(f == 1.5f);
  const TensorInfo* c = file->find("c");
  REQUIRE(c);
  CHECK(c->numel() == 1);
  CHECK(file->data(*c)[0] == 7);
  CHECK(file->find("missing") == nullptr);
}

TEST_CASE("write then read is bit-exact and aligned") {
  std::vector<float> w(37);
  for (size_t i = 0; i < w.size(); ++i) w[i] = std::sin(static_cast<float>(i)) * 1e-3f;
  std::vector<uint16_t> h = {0x3c00, 0x7bff, 0x0001};
  std::vector<double> d = {3.141592653589793, -0.0};
  std::string path = temp_path("roundtrip.safetensors");
  write_safetensors(path,
                    {{"half", DType::F16, {3}, h.data(), 6},
                     {"weights", DType::F32, {37}, w.data(), w.size() * 4},
                     {"pair", DType::F64, {1, 2}, d.data(), 16}},
                    {{"format", "pt"}});
  auto file = SafetensorsFile::open(path);
  const TensorInfo* tw = file->find("weights");
  const TensorInfo* th = file->find("half");
  const TensorInfo* td = file->find("pair");
  REQUIRE((tw && th && td));
  CHECK(std::memcmp(file->data(*tw), w.data(), w.size() * 4) == 0);
  CHECK(std::memcmp(file->data(*th), h.data(), 6) == 0);
  CHECK(std::memcmp(file->data(*td), d.data(), 16) == 0);
  // Wider types first: every tensor starts at a multiple of its element size.
  for (const TensorInfo& t : file->tensors()) CHECK(t.begin % dtype_size(t.dtype) == 0);
  CHECK(reinterpret_cast<uintptr_t>(file->data(*td)) % 8 == 0);
  CHECK_FALSE(fs::exists(path + ".tmp"));
}

TEST_CASE("truncated and corrupted files are rejected with a clear message") {
  std::vector<float> w(16, 1.0f);
  std::string good_path = temp_path("good.safetensors");
  write_safetensors(good_path, {{"w", DType::F32, {4, 4}, w.data(), 64}});
  std::ifstream in(good_path, std::ios::binary);
  std::string good((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());

  std::string path = temp_path("bad.safetensors");
  SUBCASE("missing file") { CHECK(open_error(temp_path("nope.safetensors")).find("cannot open") != std::string::npos); }
  SUBCASE("shorter than the length field") {
    write_bytes(path, "abc");
    CHECK(open_error(path).find("too short") != std::string::npos);
  }
  SUBCASE("data section truncated") {
    write_bytes(path, good.substr(0, good.size() - 10));
    CHECK(open_error(path).find("truncated") != std::string::npos);
  }
  SUBCASE("header length past the end") {
    std::string bytes = good;
    bytes[0] = static_cast<char>(0xff);
    bytes[1] = static_cast<char>(0x7f);
    write_bytes(path, bytes);
    CHECK(open_error(path).find("past the end") != std::string::npos);
  }
  SUBCASE("absurd header length") {
    std::string bytes = good;
    bytes[6] = 1;
    write_bytes(path, bytes);
    CHECK(open_error(path).find("100 MiB") != std::string::npos);
  }
  SUBCASE("header is not JSON") {
    write_bytes(path, file_bytes("{\"w\": [", std::string(64, '\0')));
    CHECK(open_error(path).find("not valid JSON") != std::string::npos);
  }
  SUBCASE("unknown dtype") {
    write_bytes(path, file_bytes(R"({"w":{"dtype":"Q4","shape":[1],"data_offsets":[0,1]}})", "x"));
    CHECK(open_error(path).find("unknown dtype") != std::string::npos);
  }
  SUBCASE("shape disagrees with the byte range") {
    write_bytes(path, file_bytes(R"({"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", std::string(8, '\0')));
    std::string msg = open_error(path);
    CHECK(msg.find("\"w\"") != std::string::npos);
    CHECK(msg.find("expected 12") != std::string::npos);
  }
  SUBCASE("overlapping tensors") {
    write_bytes(path, file_bytes(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                                 R"("b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
                                 std::string(8, '\0')));
    CHECK(open_error(path).find("previous tensor ends") != std::string::npos);
  }
  SUBCASE("overflowing shape") {
    write_bytes(path, file_bytes(R"({"w":{"dtype":"F32","shape":[4294967296,4294967296,16],"data_offsets":[0,4]}})",
                                 std::string(4, '\0')));
    CHECK(open_error(path).find("more elements") != std::string::npos);
  }
  SUBCASE("negative dimension") {
    write_bytes(path, file_bytes(R"({"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})", std::string(4, '\0')));
    CHECK(open_error(path).find("negative") != std::string::npos);
  }
}

TEST_CASE("a sharded checkpoint resolves every tensor through its index") {
  fs::path dir = fs::temp_directory_path() / "grpo_sharded_test";
  fs::remove_all(dir);
  fs::create_directories(dir);
  float a = 1.0f, b = 2.0f;
  write_safetensors((dir / "part-1.safetensors").string(), {{"x.a", DType::F32, {1}, &a, 4}});
  write_safetensors((dir / "part-2.safetensors").string(), {{"x.b", DType::F32, {1}, &b, 4}});
  std::ofstream((dir / "model.safetensors.index.json").string())
      << R"({"metadata": {"total_size": 8}, "weight_map": {"x.a": "part-1.safetensors", "x.b": "part-2.safetensors"}})";
  CheckpointWeights w = CheckpointWeights::open(dir.string());
  CHECK(w.names() == std::vector<std::string>{"x.a", "x.b"});
  float got;
  std::memcpy(&got, w.get("x.b").file->data(*w.get("x.b").info), 4);
  CHECK(got == 2.0f);
  try {
    w.get("x.c");
    FAIL("no error for a missing tensor");
  } catch (const SafetensorsError& e) {
    CHECK(std::string(e.what()).find("\"x.c\"") != std::string::npos);
  }

  std::ofstream((dir / "model.safetensors.index.json").string())
      << R"({"weight_map": {"x.a": "part-2.safetensors"}})";
  try {
    CheckpointWeights::open(dir.string());
    FAIL("no error for an index that points at the wrong shard");
  } catch (const SafetensorsError& e) {
    CHECK(std::string(e.what()).find("no such tensor") != std::string::npos);
  }
}
