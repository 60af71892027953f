#pragma once
// Checkpoint directories in the Hugging Face layout: config.json + model.safetensors (or shards with
// model.safetensors.index.json), tensor names exactly as transformers names them for deepseek_v3,
// deepseek_v2, qwen2 and llama. A directory written here loads in transformers, and one written by
// transformers (or downloaded from the hub) loads here.
#include <torch/torch.h>

#include <string>
#include <vector>

#include "policy/causal_lm.h"
#include "policy/safetensors.h"

namespace grpo {

struct SaveOptions {
  DType dtype = DType::F32;  // F32, F16 or BF16 for weights; router biases stay F32 as in DeepSeek-V3
  // Shard size limit, as transformers' max_shard_size: above it, weights go to numbered shards with an
  // index file.
  int64_t max_shard_bytes = int64_t{5} << 30;
};

// Writes config.json (torch_dtype: the weights' dtype), generation_config.json and the weights (one file,
// or shards and an index above max_shard_bytes). The previous checkpoint in the directory is replaced as a
// whole at one commit point: a crash mid-save leaves it or the new one (policy/file_set_commit.h), and
// shards it had that the new one has not are deleted.
void save_checkpoint(CausalLM& model, const std::string& directory, const SaveOptions& options = {});

struct LoadReport {
  // Tensors in the files that the model has no place for and that are not known-unused ones
  // (multi-token-prediction layers, rotary caches). Callers should show them: a long list usually means
  // the wrong model_type.
  std::vector<std::string> unexpected;
  // One line per thing skipped on purpose: DeepSeek-V3's multi-token-prediction layer.
  std::vector<std::string> notes;
};

// How the weights are stored, from config.json's quantization_config: FP8 block quantization
// (policy/fp8_blocks.h) with its block shape. Weights that are not F8_E4M3 load as they are.
struct WeightFormat {
  int64_t fp8_block_rows = 128, fp8_block_cols = 128;
};
// Reads quantization_config from a config.json; none gives the defaults. Throws ConfigError naming the
// file for a quantization this loader cannot dequantize (quant_method other than "fp8", fmt other than
// "e4m3", a malformed weight_block_size).
WeightFormat load_weight_format(const std::string& config_path);

// Builds the model from config.json and loads every weight tensor by tensor, converting F16/BF16 to
// float32 and dequantizing FP8 blocks (never the whole checkpoint twice in memory). Throws
// SafetensorsError naming the tensor when one is missing or has the wrong shape, or ConfigError. Without a
// report, the notes go to stderr.
CausalLM load_checkpoint(const std::string& directory, LoadReport* report = nullptr);

// Copies weights into an existing model (same errors as load_checkpoint).
void load_weights(CausalLM& model, const CheckpointWeights& weights, LoadReport* report = nullptr,
                  const WeightFormat& format = {});

// A safetensors entry as a CPU tensor of its stored dtype (a copy: the mapping may be unaligned).
torch::Tensor tensor_from_safetensors(const SafetensorsFile& file, const TensorInfo& info);

}  // namespace grpo
