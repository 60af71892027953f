// FP8 block-quantized checkpoints as DeepSeek-V3/R1 are published: E4M3 bytes with float32 block scales
// (`<name>_scale_inv`), quantization_config in config.json, sharded index files, the multi-token-prediction
// layer skipped with a note. The checkpoints are written here, byte by byte, by an encoder of the test's own
// (nearest E4M3 value by search over all codes, ties to even); the loaded weights are compared with a
// float64 dequantization computed from the definition of the format, not with the loader's table.
#include <doctest/doctest.h>

#include <fmt/core.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>

#include "policy/checkpoint.h"
#include "policy/fp8_blocks.h"
#include "policy_test_models.h"

using namespace grpo;
namespace fs = std::filesystem;

namespace {

// E4M3 by its definition: 1 sign, 4 exponent bits (bias 7), 3 mantissa bits, exponent 0 subnormal,
// S.1111.111 NaN, no infinities.
double fp8_definition_value(uint8_t code) {
  const int sign = code >> 7, exponent = (code >> 3) & 15, mantissa = code & 7;
  if (exponent == 15 && mantissa == 7) return std::numeric_limits<double>::quiet_NaN();
  const double magnitude = exponent == 0 ? mantissa / 8.0 * std::pow(2.0, -6) : (1 + mantissa / 8.0) * std::pow(2.0, exponent - 7);
  return sign ? -magnitude : magnitude;
}

// The nearest finite E4M3 code to x (|x| <= 448), ties to the even code.
uint8_t fp8_nearest_code(double x) {
  int best = 0;
  double best_distance = std::numeric_limits<double>::infinity();
  for (int code = 0; code < 256; ++code) {
    const double v = fp8_definition_value(static_cast<uint8_t>(code));
    if (std::isnan(v) || (v == 0 && std::signbit(v) != std::signbit(x))) continue;
    const double d = std::fabs(v - x);
    if (d < best_distance || (d == best_distance && (code & 1) == 0)) best = code, best_distance = d;
  }
  return static_cast<uint8_t>(best);
}

struct QuantizedWeight {
  std::vector<uint8_t> codes;
  std::vector<float> scale_inv;
  int64_t rows = 0, cols = 0, scale_rows = 0, scale_cols = 0;
};

// DeepSeek's recipe: per block, scale = amax / 448, codes = nearest(w / scale).
QuantizedWeight quantize_fp8(const torch::Tensor& weight, int64_t block_rows, int64_t block_cols) {
  QuantizedWeight q;
  q.rows = weight.size(0), q.cols = weight.size(1);
  q.scale_rows = (q.rows + block_rows - 1) / block_rows, q.scale_cols = (q.cols + block_cols - 1) / block_cols;
  const torch::Tensor w = weight.to(torch::kDouble).contiguous();
  const double* data = w.data_ptr<double>();
  q.scale_inv.assign(static_cast<size_t>(q.scale_rows * q.scale_cols), 0.0f);
  for (int64_t br = 0; br < q.scale_rows; ++br)
    for (int64_t bc = 0; bc < q.scale_cols; ++bc) {
      double amax = 0;
      for (int64_t r = br * block_rows; r < std::min(q.rows, (br + 1) * block_rows); ++r)
        for (int64_t c = bc * block_cols; c < std::min(q.cols, (bc + 1) * block_cols); ++c) amax = std::max(amax, std::fabs(data[r * q.cols + c]));
      q.scale_inv[static_cast<size_t>(br * q.scale_cols + bc)] = static_cast<float>(amax > 0 ? amax / 448.0 : 1.0);
    }
  q.codes.resize(static_cast<size_t>(q.rows * q.cols));
  for (int64_t r = 0; r < q.rows; ++r)
    for (int64_t c = 0; c < q.cols; ++c) {
      const double scale = q.scale_inv[static_cast<size_t>((r / block_rows) * q.scale_cols + c / block_cols)];
      q.codes[static_cast<size_t>(r * q.cols + c)] = fp8_nearest_code(std::clamp(data[r * q.cols + c] / scale, -448.0, 448.0));
    }
  return q;
}

// The float64 dequantization, rounded once to float32.
torch::Tensor fp8_reference_dequantization(const QuantizedWeight& q, int64_t block_rows, int64_t block_cols) {
  torch::Tensor out = torch::empty({q.rows, q.cols}, torch::kFloat);
  float* o = out.data_ptr<float>();
  for (int64_t r = 0; r < q.rows; ++r)
    for (int64_t c = 0; c < q.cols; ++c)
      o[r * q.cols + c] = static_cast<float>(fp8_definition_value(q.codes[static_cast<size_t>(r * q.cols + c)]) *
                                             q.scale_inv[static_cast<size_t>((r / block_rows) * q.scale_cols + c / block_cols)]);
  return out;
}

bool quantized_in_deepseek_checkpoints(const std::string& name, const torch::Tensor& t) {
  // Linear weights are FP8; embeddings, the output head, norms and the router stay in BF16/F32.
  return t.dim() == 2 && name.find("embed_tokens") == std::string::npos && name.find("lm_head") == std::string::npos &&
         name.find("norm") == std::string::npos && name.find("mlp.gate.weight") == std::string::npos;
}

std::string fp8_test_dir(const std::string& name) {
  fs::path dir = fs::temp_directory_path() / "grpo_fp8_test" / name;
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir.string();
}

void add_quantization_config(const std::string& dir, const nlohmann::json& quantization) {
  std::ifstream in(dir + "/config.json");
  nlohmann::json config = nlohmann::json::parse(in);
  config["quantization_config"] = quantization;
  config["num_nextn_predict_layers"] = 1;
  std::ofstream(dir + "/config.json") << config.dump(2);
}

std::string fp8_load_error(const std::string& dir) {
  try {
    load_checkpoint(dir);
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

// A DeepSeek-V3 checkpoint written the way DeepSeek publishes it, in two shards with an index, blocks of
// 16 x 24 (so the tiny model's 32-wide weights have a full and a narrower edge block).
struct Fp8Checkpoint {
  std::string dir;
  std::map<std::string, QuantizedWeight> quantized;
  std::map<std::string, torch::Tensor> original;
  std::string with_subnormals;  // the weight given values far below its block maxima
};

Fp8Checkpoint write_fp8_checkpoint(const std::string& name, int64_t block_rows, int64_t block_cols) {
  Fp8Checkpoint ck;
  ck.dir = fp8_test_dir(name);
  CausalLM model = test::tiny_model(test::kTinyDeepSeekV3, 41);
  save_checkpoint(model, ck.dir);
  add_quantization_config(ck.dir, {{"quant_method", "fp8"}, {"fmt", "e4m3"}, {"activation_scheme", "dynamic"},
                                   {"weight_block_size", {block_rows, block_cols}}});
  fs::remove(ck.dir + "/model.safetensors");
  std::vector<TensorToWrite> shards[2];
  std::vector<torch::Tensor> keep;
  bool first = true;
  for (const auto& item : model->named_parameters()) {
    torch::Tensor value = item.value().detach().contiguous().clone();
    if (first && quantized_in_deepseek_checkpoints(item.key(), value)) {
      // Values far below their block's largest become E4M3 subnormals (and some round to zero).
      value.view(-1).slice(0, 0, 6).copy_(value.abs().max() * torch::tensor({1e-5, -2e-5, 3e-4, -1e-3, 4e-6, 1e-7}));
      ck.with_subnormals = item.key();
      first = false;
    }
    ck.original[item.key()] = value;
    std::vector<TensorToWrite>& shard = shards[ck.original.size() % 2];
    if (quantized_in_deepseek_checkpoints(item.key(), value)) {
      QuantizedWeight& q = ck.quantized[item.key()] = quantize_fp8(value, block_rows, block_cols);
      shard.push_back({item.key(), DType::F8_E4M3, {q.rows, q.cols}, q.codes.data(), q.codes.size()});
      shard.push_back({item.key() + "_scale_inv", DType::F32, {q.scale_rows, q.scale_cols}, q.scale_inv.data(), q.scale_inv.size() * 4});
    } else {
      keep.push_back(value);
      shard.push_back({item.key(), DType::F32, value.sizes().vec(), value.data_ptr(), static_cast<size_t>(value.numel() * 4)});
    }
  }
  for (const auto& item : model->named_buffers()) {
    torch::Tensor value = item.value().detach().to(torch::kFloat).contiguous().clone();
    ck.original[item.key()] = value;
    keep.push_back(value);
    shards[0].push_back({item.key(), DType::F32, value.sizes().vec(), value.data_ptr(), static_cast<size_t>(value.numel() * 4)});
  }
  // The multi-token-prediction module DeepSeek-V3 ships as the layer after the last one.
  static std::vector<uint8_t> mtp(16, 0x38);
  shards[1].push_back({"model.layers.3.eh_proj.weight", DType::F8_E4M3, {4, 4}, mtp.data(), 16});
  shards[1].push_back({"model.layers.3.enorm.weight", DType::F8_E4M3, {16}, mtp.data(), 16});
  nlohmann::json index = {{"metadata", {{"total_size", 0}}}, {"weight_map", nlohmann::json::object()}};
  for (int i = 0; i < 2; ++i) {
    const std::string file = fmt::format("model-{:05d}-of-00002.safetensors", i + 1);
    write_safetensors(ck.dir + "/" + file, shards[i]);
    for (const TensorToWrite& t : shards[i]) index["weight_map"][t.name] = file;
  }
  std::ofstream(ck.dir + "/model.safetensors.index.json") << index.dump(2);
  return ck;
}

}  // namespace

TEST_CASE("E4M3 bytes decode to the values the format defines") {
  for (int code = 0; code < 256; ++code) {
    const double expected = fp8_definition_value(static_cast<uint8_t>(code));
    const float got = e4m3_to_float(static_cast<uint8_t>(code));
    if (std::isnan(expected)) {
      CHECK(std::isnan(got));
    } else {
      CHECK(got == static_cast<float>(expected));
    }
  }
  CHECK(e4m3_to_float(0x7E) == 448.0f);
  CHECK(e4m3_to_float(0xFE) == -448.0f);
  CHECK(e4m3_to_float(0x01) == std::ldexp(1.0f, -9));  // the smallest subnormal
  CHECK(e4m3_to_float(0x08) == std::ldexp(1.0f, -6));  // the smallest normal
  CHECK(std::isnan(e4m3_to_float(0x7F)));
}

TEST_CASE("dequantize_fp8_blocks uses each block's scale, edge blocks included (128 x 128 blocks)") {
  const int64_t rows = 130, cols = 200;  // edge blocks of 2 rows and 72 columns
  std::vector<uint8_t> codes(static_cast<size_t>(rows * cols));
  for (size_t i = 0; i < codes.size(); ++i) codes[i] = static_cast<uint8_t>((i * 37 + 11) % 256 == 0x7F ? 0x7E : (i * 37 + 11) % 256);
  for (uint8_t& c : codes) if (c == 0xFF) c = 0xFE;
  const std::vector<float> scales = {0.5f, 3.0f, 1e-3f, 7.25f};  // [2, 2] blocks
  std::vector<float> out(codes.size());
  dequantize_fp8_blocks(codes.data(), rows, cols, scales.data(), 128, 128, out.data());
  int mismatches = 0;
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) {
      const double expected = fp8_definition_value(codes[static_cast<size_t>(r * cols + c)]) * scales[static_cast<size_t>((r / 128) * 2 + c / 128)];
      mismatches += out[static_cast<size_t>(r * cols + c)] != static_cast<float>(expected);
    }
  CHECK(mismatches == 0);
}

TEST_CASE("a DeepSeek FP8 checkpoint (sharded, 16 x 24 blocks, an MTP layer) loads as its float64 dequantization") {
  Fp8Checkpoint ck = write_fp8_checkpoint("sharded", 16, 24);
  REQUIRE(ck.quantized.size() > 10);
  // The first quantized weight holds subnormals, zeros and the block maxima (codes 0x7E / 0xFE = +-448).
  const QuantizedWeight& first = ck.quantized.at(ck.with_subnormals);
  bool subnormal = false, max_code = false;
  for (uint8_t c : first.codes) subnormal |= (c & 0x78) == 0 && (c & 7) != 0, max_code |= (c & 0x7F) == 0x7E;
  CHECK(subnormal);
  CHECK(max_code);

  LoadReport report;
  CausalLM loaded = load_checkpoint(ck.dir, &report);
  CHECK(report.unexpected.empty());
  REQUIRE(report.notes.size() == 1);
  CHECK(report.notes[0].find("layer 3 after the 3 decoder layers") != std::string::npos);
  CHECK(report.notes[0].find("multi-token-prediction") != std::string::npos);
  int checked = 0;
  for (const auto& item : loaded->named_parameters()) {
    auto q = ck.quantized.find(item.key());
    if (q == ck.quantized.end()) {
      CHECK_MESSAGE(torch::equal(item.value(), ck.original[item.key()]), item.key());
      continue;
    }
    CHECK_MESSAGE(torch::equal(item.value(), fp8_reference_dequantization(q->second, 16, 24)), item.key());
    // And the quantization is DeepSeek's: within half an E4M3 step (1/16 relative) of the block's values.
    const torch::Tensor error = (item.value() - ck.original[item.key()]).abs();
    CHECK((error <= ck.original[item.key()].abs().max() / 16).all().item<bool>());
    ++checked;
  }
  CHECK(checked == static_cast<int>(ck.quantized.size()));
}

TEST_CASE("FP8 checkpoints: missing or misshaped scales and unsupported quantizations are named") {
  Fp8Checkpoint ck = write_fp8_checkpoint("errors", 16, 24);
  const std::string name = ck.quantized.begin()->first;
  SUBCASE("block size that does not match the scales") {
    add_quantization_config(ck.dir, {{"quant_method", "fp8"}, {"weight_block_size", {128, 128}}});
    const std::string error = fp8_load_error(ck.dir);
    CHECK(error.find("_scale_inv\" has shape") != std::string::npos);
    CHECK(error.find("blocks of 128 x 128") != std::string::npos);
  }
  SUBCASE("another quantization method") {
    add_quantization_config(ck.dir, {{"quant_method", "gptq"}});
    CHECK(fp8_load_error(ck.dir).find("quant_method \"gptq\" is not supported") != std::string::npos);
  }
  SUBCASE("a weight without its scales") {
    nlohmann::json index = nlohmann::json::parse(std::ifstream(ck.dir + "/model.safetensors.index.json"));
    index["weight_map"].erase(name + "_scale_inv");
    std::ofstream(ck.dir + "/model.safetensors.index.json") << index.dump();
    const std::string error = fp8_load_error(ck.dir);
    CHECK(error.find("\"" + name + "\" is F8_E4M3 but the checkpoint has no \"" + name + "_scale_inv\"") != std::string::npos);
  }
}
