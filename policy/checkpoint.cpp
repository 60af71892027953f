#include "policy/checkpoint.h"

#include <fmt/core.h>
#include <fmt/format.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>

namespace grpo {
namespace {

namespace fs = std::filesystem;

torch::ScalarType scalar_type_of(DType dtype, const std::string& where) {
  switch (dtype) {
    case DType::F64: return torch::kDouble;
    case DType::F32: return torch::kFloat;
    case DType::F16: return torch::kHalf;
    case DType::BF16: return torch::kBFloat16;
    case DType::I64: return torch::kLong;
    case DType::I32: return torch::kInt;
    case DType::I16: return torch::kShort;
    case DType::I8: return torch::kChar;
    case DType::U8: return torch::kByte;
    case DType::Bool: return torch::kBool;
    case DType::F8_E4M3: break;
  }
  throw SafetensorsError(fmt::format("{}: dtype {} is not supported (FP8 checkpoints must be dequantised to BF16 first)",
                                     where, dtype_name(dtype)));
}

DType dtype_of(torch::ScalarType type) {
  switch (type) {
    case torch::kFloat: return DType::F32;
    case torch::kHalf: return DType::F16;
    case torch::kBFloat16: return DType::BF16;
    case torch::kDouble: return DType::F64;
    default: throw SafetensorsError(fmt::format("cannot save tensors of type {}", c10::toString(type)));
  }
}

// Every tensor the checkpoint holds for this model: parameters and persistent buffers.
std::vector<std::pair<std::string, torch::Tensor>> state_tensors(CausalLM& model) {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (const auto& item : model->named_parameters()) out.emplace_back(item.key(), item.value());
  for (const auto& item : model->named_buffers()) out.emplace_back(item.key(), item.value());
  return out;
}

// Tensors that hub checkpoints carry but a model for generation and training does not use.
bool known_unused(const std::string& name, int64_t num_layers) {
  static const std::regex layer(R"(^model\.layers\.(\d+)\.)");
  std::smatch m;
  if (std::regex_search(name, m, layer) && std::stoll(m[1].str()) >= num_layers) return true;  // MTP layers
  return name.find("rotary_emb.inv_freq") != std::string::npos;
}

}  // namespace

torch::Tensor tensor_from_safetensors(const SafetensorsFile& file, const TensorInfo& info) {
  torch::Tensor t = torch::empty(info.shape, torch::TensorOptions().dtype(scalar_type_of(info.dtype, file.path() + ": " + info.name)));
  std::memcpy(t.data_ptr(), file.data(info), info.end - info.begin);
  return t;
}

void load_weights(CausalLM& model, const CheckpointWeights& weights, LoadReport* report) {
  torch::NoGradGuard no_grad;
  std::map<std::string, bool> used;
  for (auto& [name, target] : state_tensors(model)) {
    CheckpointWeights::Entry entry = weights.get(name);
    if (entry.info->shape != target.sizes().vec())
      throw SafetensorsError(fmt::format("{}: tensor \"{}\" has shape [{}], the model expects [{}] (config.json and weights disagree)",
                                         entry.file->path(), name, fmt::join(entry.info->shape, ", "),
                                         fmt::join(target.sizes().vec(), ", ")));
    target.copy_(tensor_from_safetensors(*entry.file, *entry.info));
    used[name] = true;
  }
  if (report) {
    report->unexpected.clear();
    for (const std::string& name : weights.names())
      if (!used.count(name) && !known_unused(name, model->config().num_hidden_layers)) report->unexpected.push_back(name);
  }
}

CausalLM load_checkpoint(const std::string& directory, LoadReport* report) {
  ModelConfig config = load_model_config(directory + "/config.json");
  CheckpointWeights weights = CheckpointWeights::open(directory);
  CausalLM model(config);
  load_weights(model, weights, report);
  return model;
}

void save_checkpoint(CausalLM& model, const std::string& directory, const SaveOptions& options) {
  fs::create_directories(directory);
  save_model_config(model->config(), directory + "/config.json");

  std::vector<torch::Tensor> keep_alive;
  std::vector<TensorToWrite> tensors;
  int64_t total_bytes = 0;
  for (auto& [name, value] : state_tensors(model)) {
    bool is_buffer = name.find("e_score_correction_bias") != std::string::npos;
    torch::ScalarType type = is_buffer ? torch::kFloat : scalar_type_of(options.dtype, name);
    torch::Tensor cpu = value.detach().to(torch::kCPU, type).contiguous();
    keep_alive.push_back(cpu);
    tensors.push_back({name, dtype_of(type), cpu.sizes().vec(), cpu.data_ptr(), static_cast<size_t>(cpu.numel() * cpu.element_size())});
    total_bytes += static_cast<int64_t>(tensors.back().nbytes);
  }
  const std::map<std::string, std::string> metadata = {{"format", "pt"}};

  const std::string index_path = directory + "/model.safetensors.index.json";
  if (total_bytes <= options.max_shard_bytes) {
    write_safetensors(directory + "/model.safetensors", tensors, metadata);
    fs::remove(index_path);  // a stale index would shadow the single file
    return;
  }
  // Greedy sharding in name order, as transformers does: a new shard when the next tensor would overflow.
  std::sort(tensors.begin(), tensors.end(), [](const TensorToWrite& a, const TensorToWrite& b) { return a.name < b.name; });
  std::vector<std::vector<TensorToWrite>> shards(1);
  int64_t shard_bytes = 0;
  for (const TensorToWrite& t : tensors) {
    if (shard_bytes > 0 && shard_bytes + static_cast<int64_t>(t.nbytes) > options.max_shard_bytes) {
      shards.emplace_back();
      shard_bytes = 0;
    }
    shards.back().push_back(t);
    shard_bytes += static_cast<int64_t>(t.nbytes);
  }
  nlohmann::json index = {{"metadata", {{"total_size", total_bytes}}}, {"weight_map", nlohmann::json::object()}};
  for (size_t i = 0; i < shards.size(); ++i) {
    std::string file = fmt::format("model-{:05d}-of-{:05d}.safetensors", i + 1, shards.size());
    write_safetensors(directory + "/" + file, shards[i], metadata);
    for (const TensorToWrite& t : shards[i]) index["weight_map"][t.name] = file;
  }
  std::ofstream out(index_path);
  out << index.dump(2) << "\n";
  if (!out) throw SafetensorsError(fmt::format("{}: write failed", index_path));
  fs::remove(directory + "/model.safetensors");  // the index now describes the weights
}

}  // namespace grpo
