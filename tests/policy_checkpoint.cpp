// Checkpoint directories: save and load reproduce the model bit for bit (F32) or within rounding (BF16);
// shards and the index work; a missing or misshaped tensor is named in the error.
#include <doctest/doctest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "policy/checkpoint.h"
#include "policy_test_models.h"

using namespace grpo;
using torch::Tensor;
namespace fs = std::filesystem;

namespace {

std::string fresh_dir(const std::string& name) {
  fs::path dir = fs::temp_directory_path() / "grpo_checkpoint_test" / name;
  fs::remove_all(dir);
  return dir.string();
}

Tensor logits_of(CausalLM& model) {
  ModelInputs in;
  in.input_ids = torch::tensor({{1, 5, 9, 13, 40}}, torch::kLong);
  return model->forward(in);
}

std::string load_error(const std::string& dir) {
  try {
    load_checkpoint(dir);
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("save then load is bit-exact for every family, with Hugging Face names") {
  for (const char* json : test::kAllTinyConfigs) {
    CausalLM model = test::tiny_model(json, 31);
    CAPTURE(model->config().model_type);
    std::string dir = fresh_dir(model->config().model_type);
    save_checkpoint(model, dir);
    CHECK(fs::exists(dir + "/config.json"));

    auto file = SafetensorsFile::open(dir + "/model.safetensors");
    CHECK(file->find("model.embed_tokens.weight") != nullptr);
    CHECK(file->find("model.layers.0.input_layernorm.weight") != nullptr);
    CHECK((file->find("lm_head.weight") != nullptr) == !model->config().tie_word_embeddings);

    LoadReport report;
    CausalLM loaded = load_checkpoint(dir, &report);
    loaded->eval();
    CHECK(report.unexpected.empty());
    auto a = model->named_parameters(), b = loaded->named_parameters();
    for (const auto& item : a) CHECK(torch::equal(item.value(), *b.find(item.key())));
    for (const auto& item : model->named_buffers()) CHECK(torch::equal(item.value(), *loaded->named_buffers().find(item.key())));
    CHECK(torch::equal(logits_of(model), logits_of(loaded)));
  }
}

TEST_CASE("DeepSeek-V3 checkpoints carry the router correction bias and MLA tensor names") {
  CausalLM model = test::tiny_model(test::kTinyDeepSeekV3, 32);
  std::string dir = fresh_dir("v3-names");
  save_checkpoint(model, dir, {DType::BF16});
  auto file = SafetensorsFile::open(dir + "/model.safetensors");
  for (const char* name : {"model.layers.1.mlp.gate.e_score_correction_bias", "model.layers.1.mlp.gate.weight",
                           "model.layers.1.mlp.experts.7.down_proj.weight", "model.layers.1.mlp.shared_experts.gate_proj.weight",
                           "model.layers.0.self_attn.q_a_proj.weight", "model.layers.0.self_attn.q_a_layernorm.weight",
                           "model.layers.0.self_attn.q_b_proj.weight", "model.layers.0.self_attn.kv_a_proj_with_mqa.weight",
                           "model.layers.0.self_attn.kv_a_layernorm.weight", "model.layers.0.self_attn.kv_b_proj.weight",
                           "model.layers.0.mlp.up_proj.weight"}) {
    CAPTURE(name);
    CHECK(file->find(name) != nullptr);
  }
  CHECK(file->find("model.layers.1.mlp.gate.e_score_correction_bias")->dtype == DType::F32);
  CHECK(file->find("model.layers.1.mlp.gate.weight")->dtype == DType::BF16);
  // BF16 keeps 8 mantissa bits: relative error per weight <= 2^-8.
  CausalLM loaded = load_checkpoint(dir);
  auto a = model->named_parameters(), b = loaded->named_parameters();
  for (const auto& item : a) {
    Tensor err = (item.value() - *b.find(item.key())).abs() - item.value().abs() * (1.0 / 256) - 1e-30;
    CHECK(err.max().item<double>() <= 0.0);
  }
}

TEST_CASE("sharded save writes an index that loads back exactly") {
  CausalLM model = test::tiny_model(test::kTinyDeepSeekV2, 33);
  std::string dir = fresh_dir("sharded");
  save_checkpoint(model, dir, {DType::F32, /*max_shard_bytes=*/20000});
  CHECK(fs::exists(dir + "/model.safetensors.index.json"));
  CHECK_FALSE(fs::exists(dir + "/model.safetensors"));
  int shards = 0;
  for (const auto& e : fs::directory_iterator(dir)) shards += e.path().extension() == ".safetensors";
  CHECK(shards > 2);
  CausalLM loaded = load_checkpoint(dir);
  loaded->eval();
  CHECK(torch::equal(logits_of(model), logits_of(loaded)));
}

TEST_CASE("loading reports missing tensors, wrong shapes and leftovers by name") {
  CausalLM model = test::tiny_model(test::kTinyLlama, 34);
  std::string dir = fresh_dir("broken");
  save_checkpoint(model, dir);
  std::vector<float> keep(4, 0.0f);

  SUBCASE("missing tensor") {
    auto file = SafetensorsFile::open(dir + "/model.safetensors");
    std::vector<TensorToWrite> kept;
    for (const TensorInfo& t : file->tensors())
      if (t.name != "model.layers.1.mlp.down_proj.weight")
        kept.push_back({t.name, t.dtype, t.shape, file->data(t), t.end - t.begin});
    write_safetensors(dir + "/model2.safetensors", kept);
    file.reset();
    fs::rename(dir + "/model2.safetensors", dir + "/model.safetensors");
    CHECK(load_error(dir).find("\"model.layers.1.mlp.down_proj.weight\"") != std::string::npos);
  }
  SUBCASE("shape mismatch") {
    std::string cfg_path = dir + "/config.json";
    ModelConfig c = load_model_config(cfg_path);
    c.intermediate_size = 40;
    save_model_config(c, cfg_path);
    std::string msg = load_error(dir);
    CHECK(msg.find("model.layers.0.mlp.gate_proj.weight") != std::string::npos);
    CHECK(msg.find("[48, 32]") != std::string::npos);
  }
  SUBCASE("extra tensors are reported, multi-token-prediction layers are not") {
    auto file = SafetensorsFile::open(dir + "/model.safetensors");
    std::vector<TensorToWrite> all;
    for (const TensorInfo& t : file->tensors()) all.push_back({t.name, t.dtype, t.shape, file->data(t), t.end - t.begin});
    all.push_back({"model.layers.7.eh_proj.weight", DType::F32, {4}, keep.data(), 16});
    all.push_back({"model.vision_tower.weight", DType::F32, {4}, keep.data(), 16});
    write_safetensors(dir + "/model2.safetensors", all);
    file.reset();
    fs::rename(dir + "/model2.safetensors", dir + "/model.safetensors");
    LoadReport report;
    load_checkpoint(dir, &report);
    CHECK(report.unexpected == std::vector<std::string>{"model.vision_tower.weight"});
  }
}

TEST_CASE("a saved checkpoint names its dtype in config.json and carries generation_config.json") {
  CausalLM model = test::tiny_model(test::kTinyDeepSeekV3, 35);
  for (const auto& [dtype, name] : std::vector<std::pair<DType, std::string>>{{DType::F32, "float32"}, {DType::BF16, "bfloat16"}}) {
    const std::string dir = fresh_dir("dtype_" + name);
    save_checkpoint(model, dir, {dtype});
    std::ifstream config_file(dir + "/config.json");
    const nlohmann::json config = nlohmann::json::parse(config_file);
    CHECK(config["torch_dtype"] == name);
    auto file = SafetensorsFile::open(dir + "/model.safetensors");
    CHECK(file->find("model.embed_tokens.weight")->dtype == dtype);
    std::ifstream generation_file(dir + "/generation_config.json");
    const nlohmann::json generation = nlohmann::json::parse(generation_file);
    CHECK(generation["bos_token_id"] == 0);
    CHECK(generation["eos_token_id"] == 1);
  }
}

TEST_CASE("saving over a sharded checkpoint removes the shards the new one does not use") {
  CausalLM model = test::tiny_model(test::kTinyDeepSeekV2, 36);
  const std::string dir = fresh_dir("reshard");
  save_checkpoint(model, dir, {DType::F32, /*max_shard_bytes=*/20000});
  REQUIRE(fs::exists(dir + "/model.safetensors.index.json"));
  save_checkpoint(model, dir, {DType::F32});  // one file now: the index and every shard go
  std::vector<std::string> files;
  for (const auto& e : fs::directory_iterator(dir)) files.push_back(e.path().filename().string());
  std::sort(files.begin(), files.end());
  CHECK(files == std::vector<std::string>{"config.json", "generation_config.json", "model.safetensors"});
  CausalLM loaded = load_checkpoint(dir);
  loaded->eval();
  model->eval();
  CHECK(torch::equal(logits_of(model), logits_of(loaded)));
}
