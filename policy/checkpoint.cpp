#include "policy/checkpoint.h"

#include <fmt/core.h>
#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>

#include "policy/file_set_commit.h"
#include "policy/fp8_blocks.h"

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
  throw SafetensorsError(fmt::format("{}: dtype {} has no LibTorch type here (FP8 weights are dequantized with their "
                                     "block scales by load_weights)", where, dtype_name(dtype)));
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

// The N of a "model.layers.N." tensor name; -1 for other tensors.
int64_t layer_of(const std::string& name) {
  static const std::regex layer(R"(^model\.layers\.(\d+)\.)");
  std::smatch m;
  return std::regex_search(name, m, layer) ? std::stoll(m[1].str()) : -1;
}

// Tensors that hub checkpoints carry but a model for generation and training does not use: the
// multi-token-prediction layers DeepSeek-V3 ships after its num_hidden_layers decoder layers
// (num_nextn_predict_layers of them, stored as layers num_hidden_layers, ...), rotary caches.
bool known_unused(const std::string& name, int64_t num_layers) {
  return layer_of(name) >= num_layers || name.find("rotary_emb.inv_freq") != std::string::npos;
}

// The layer numbers of those multi-token-prediction layers.
std::set<int64_t> extra_layers(const std::vector<std::string>& names, int64_t num_layers) {
  std::set<int64_t> layers;
  for (const std::string& name : names)
    if (layer_of(name) >= num_layers) layers.insert(layer_of(name));
  return layers;
}

// A weight as float32 from its FP8 bytes and its block scales (`<name>_scale_inv`).
torch::Tensor dequantized_weight(const CheckpointWeights& weights, const std::string& name, const CheckpointWeights::Entry& entry,
                                 const WeightFormat& format) {
  const std::string where = fmt::format("{}: tensor \"{}\"", entry.file->path(), name);
  if (entry.info->shape.size() != 2)
    throw SafetensorsError(fmt::format("{} is F8_E4M3 with {} dimensions; FP8 block quantization is for 2-D weights", where,
                                       entry.info->shape.size()));
  const std::string scale_name = name + "_scale_inv";
  if (!weights.contains(scale_name))
    throw SafetensorsError(fmt::format("{} is F8_E4M3 but the checkpoint has no \"{}\" (its block scales)", where, scale_name));
  const CheckpointWeights::Entry scale_entry = weights.get(scale_name);
  const int64_t rows = entry.info->shape[0], cols = entry.info->shape[1];
  const std::vector<int64_t> expected = {(rows + format.fp8_block_rows - 1) / format.fp8_block_rows,
                                         (cols + format.fp8_block_cols - 1) / format.fp8_block_cols};
  if (scale_entry.info->shape != expected)
    throw SafetensorsError(fmt::format("{}: \"{}\" has shape [{}]; a [{}, {}] weight in blocks of {} x {} "
                                       "(quantization_config.weight_block_size) needs [{}]",
                                       scale_entry.file->path(), scale_name, fmt::join(scale_entry.info->shape, ", "), rows, cols,
                                       format.fp8_block_rows, format.fp8_block_cols, fmt::join(expected, ", ")));
  const torch::Tensor scales = tensor_from_safetensors(*scale_entry.file, *scale_entry.info).to(torch::kFloat).contiguous();
  torch::Tensor out = torch::empty({rows, cols}, torch::kFloat);
  dequantize_fp8_blocks(entry.file->data(*entry.info), rows, cols, scales.data_ptr<float>(), format.fp8_block_rows,
                        format.fp8_block_cols, out.data_ptr<float>());
  return out;
}

const char* torch_dtype_name(DType dtype) {
  switch (dtype) {
    case DType::BF16: return "bfloat16";
    case DType::F16: return "float16";
    default: return "float32";
  }
}

// What transformers' GenerationConfig.from_model_config writes: the ids that start and end a text.
std::string generation_config_json(const ModelConfig& c) {
  nlohmann::json j = {{"_from_model_config", true}};
  auto ids = [](const std::vector<int64_t>& v) { return v.size() == 1 ? nlohmann::json(v[0]) : nlohmann::json(v); };
  if (!c.bos_token_ids.empty()) j["bos_token_id"] = ids(c.bos_token_ids);
  if (!c.eos_token_ids.empty()) j["eos_token_id"] = ids(c.eos_token_ids);
  return j.dump(2) + "\n";
}

void write_text_file(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  if (!out) throw SafetensorsError(fmt::format("{}: write failed", path));
}

// The weight files a checkpoint directory holds now: model.safetensors, the index and every shard it names.
std::vector<std::string> weight_files(const std::string& directory) {
  std::vector<std::string> files;
  if (fs::exists(directory + "/model.safetensors")) files.push_back("model.safetensors");
  const std::string index_path = directory + "/model.safetensors.index.json";
  if (fs::exists(index_path)) {
    files.push_back("model.safetensors.index.json");
    std::ifstream in(index_path);
    const nlohmann::json index = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
    if (index.is_object() && index.contains("weight_map") && index["weight_map"].is_object())
      for (const auto& [name, file] : index["weight_map"].items())
        if (file.is_string() && std::find(files.begin(), files.end(), file.get<std::string>()) == files.end())
          files.push_back(file.get<std::string>());
  }
  return files;
}

}  // namespace

WeightFormat load_weight_format(const std::string& config_path) {
  WeightFormat format;
  std::ifstream in(config_path);
  if (!in) return format;
  const nlohmann::json config = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (!config.is_object() || !config.contains("quantization_config")) return format;
  const nlohmann::json& q = config["quantization_config"];
  const std::string method = q.value("quant_method", "");
  if (method != "fp8")
    throw ConfigError(fmt::format("{}: quantization_config.quant_method \"{}\" is not supported (FP8 block quantization, "
                                  "\"fp8\", is; dequantize other formats to BF16 first)", config_path, method));
  if (q.contains("fmt") && q["fmt"] != "e4m3")
    throw ConfigError(fmt::format("{}: quantization_config.fmt {} is not supported (only \"e4m3\")", config_path, q["fmt"].dump()));
  if (q.contains("weight_block_size")) {
    const nlohmann::json& b = q["weight_block_size"];
    if (!b.is_array() || b.size() != 2 || !b[0].is_number_integer() || !b[1].is_number_integer() || b[0] <= 0 || b[1] <= 0)
      throw ConfigError(fmt::format("{}: quantization_config.weight_block_size must be two positive integers, got {}", config_path, b.dump()));
    format.fp8_block_rows = b[0].get<int64_t>();
    format.fp8_block_cols = b[1].get<int64_t>();
  }
  return format;
}

torch::Tensor tensor_from_safetensors(const SafetensorsFile& file, const TensorInfo& info) {
  torch::Tensor t = torch::empty(info.shape, torch::TensorOptions().dtype(scalar_type_of(info.dtype, file.path() + ": " + info.name)));
  std::memcpy(t.data_ptr(), file.data(info), info.end - info.begin);
  return t;
}

void load_weights(CausalLM& model, const CheckpointWeights& weights, LoadReport* report, const WeightFormat& format) {
  torch::NoGradGuard no_grad;
  std::set<std::string> used;
  for (auto& [name, target] : state_tensors(model)) {
    CheckpointWeights::Entry entry = weights.get(name);
    if (entry.info->shape != target.sizes().vec())
      throw SafetensorsError(fmt::format("{}: tensor \"{}\" has shape [{}], the model expects [{}] (config.json and weights disagree)",
                                         entry.file->path(), name, fmt::join(entry.info->shape, ", "),
                                         fmt::join(target.sizes().vec(), ", ")));
    // One tensor at a time: the float32 copy of a weight lives only until it is in the model.
    if (entry.info->dtype == DType::F8_E4M3) {
      target.copy_(dequantized_weight(weights, name, entry, format));
      used.insert(name + "_scale_inv");
    } else {
      target.copy_(tensor_from_safetensors(*entry.file, *entry.info));
    }
    used.insert(name);
  }
  if (report) {
    const int64_t layers = model->config().num_hidden_layers;
    report->unexpected.clear();
    report->notes.clear();
    for (const std::string& name : weights.names())
      if (!used.count(name) && !known_unused(name, layers)) report->unexpected.push_back(name);
    const std::set<int64_t> extra = extra_layers(weights.names(), layers);
    if (!extra.empty())
      report->notes.push_back(fmt::format("layer{} {} after the {} decoder layers: DeepSeek-V3's multi-token-prediction "
                                          "module (num_nextn_predict_layers), skipped: training and sampling here predict one token",
                                          extra.size() == 1 ? "" : "s", fmt::join(extra, ", "), layers));
  }
}

CausalLM load_checkpoint(const std::string& directory, LoadReport* report) {
  recover_interrupted_commit(directory);  // a save a crash interrupted: finished or undone first
  ModelConfig config = load_model_config(directory + "/config.json");
  const WeightFormat format = load_weight_format(directory + "/config.json");
  CheckpointWeights weights = CheckpointWeights::open(directory);
  CausalLM model(config);
  LoadReport own;
  load_weights(model, weights, report ? report : &own, format);
  if (!report)
    for (const std::string& note : own.notes) fmt::print(stderr, "{}: {}\n", directory, note);
  return model;
}

void save_checkpoint(CausalLM& model, const std::string& directory, const SaveOptions& options) {
  // Every file of the checkpoint is staged, then all replace the old ones at one commit point, so a crash
  // mid-save leaves the previous checkpoint or this one (policy/file_set_commit.h).
  FileSetCommit files(directory);
  write_text_file(files.staged_path("config.json"), model_config_to_json(model->config(), torch_dtype_name(options.dtype)));
  write_text_file(files.staged_path("generation_config.json"), generation_config_json(model->config()));

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

  // The weight files of the previous checkpoint: whichever the new one does not overwrite go at the commit.
  const std::vector<std::string> old_files = weight_files(directory);
  std::vector<std::string> new_files;
  if (total_bytes <= options.max_shard_bytes) {
    write_safetensors(files.staged_path("model.safetensors"), tensors, metadata);
    new_files.push_back("model.safetensors");
  } else {
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
      write_safetensors(files.staged_path(file), shards[i], metadata);
      new_files.push_back(file);
      for (const TensorToWrite& t : shards[i]) index["weight_map"][t.name] = file;
    }
    write_text_file(files.staged_path("model.safetensors.index.json"), index.dump(2) + "\n");
    new_files.push_back("model.safetensors.index.json");
  }
  for (const std::string& old : old_files)
    if (std::find(new_files.begin(), new_files.end(), old) == new_files.end()) files.remove_on_commit(old);
  files.commit();
}

}  // namespace grpo
