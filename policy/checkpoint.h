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

// Writes config.json and the weights. Existing files of the same names are replaced atomically.
void save_checkpoint(CausalLM& model, const std::string& directory, const SaveOptions& options = {});

struct LoadReport {
  // Tensors in the files that the model has no place for and that are not known-unused ones
  // (multi-token-prediction layers, rotary caches). Callers should show them: a long list usually means
  // the wrong model_type.
  std::vector<std::string> unexpected;
};

// Builds the model from config.json and loads every weight, converting F16/BF16 to float32.
// Throws SafetensorsError naming the tensor when one is missing or has the wrong shape, or ConfigError.
CausalLM load_checkpoint(const std::string& directory, LoadReport* report = nullptr);

// Copies weights into an existing model (same errors as load_checkpoint).
void load_weights(CausalLM& model, const CheckpointWeights& weights, LoadReport* report = nullptr);

// A safetensors entry as a CPU tensor of its stored dtype (a copy: the mapping may be unaligned).
torch::Tensor tensor_from_safetensors(const SafetensorsFile& file, const TensorInfo& info);

}  // namespace grpo
