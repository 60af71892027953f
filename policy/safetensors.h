#pragma once
// The safetensors format (https://huggingface.co/docs/safetensors): 8-byte little-endian header
// length N, N bytes of JSON {name: {dtype, shape, data_offsets: [begin, end)}, "__metadata__": {..}},
// then the raw little-endian tensor bytes. Files are memory-mapped, never read whole, so a 100 GB
// sharded checkpoint costs only the pages actually touched. No LibTorch here: conversion to tensors
// lives in checkpoint.cpp.

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace grpo {

// A safetensors file or index that is unreadable, truncated or inconsistent; the message names the
// file and, where there is one, the tensor.
class SafetensorsError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

enum class DType { F64, F32, F16, BF16, I64, I32, I16, I8, U8, Bool, F8_E4M3 };

const char* dtype_name(DType dtype);   // as spelled in the header: "F32", "BF16", ...
size_t dtype_size(DType dtype);        // bytes per element

struct TensorInfo {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  size_t begin = 0;  // byte offsets into the data section
  size_t end = 0;
  int64_t numel() const;
};

// A read-only, memory-mapped safetensors file. Opening validates the whole header: every dtype is
// known, every shape matches its byte range, ranges do not overlap and exactly cover the data section.
class SafetensorsFile {
 public:
  static std::shared_ptr<const SafetensorsFile> open(const std::string& path);
  ~SafetensorsFile();
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;

  const std::string& path() const { return path_; }
  const std::vector<TensorInfo>& tensors() const { return tensors_; }  // in file order
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  const TensorInfo* find(const std::string& name) const;  // nullptr when absent
  // Pointer to the tensor's first byte. Not necessarily aligned to its element size.
  const uint8_t* data(const TensorInfo& info) const { return data_ + info.begin; }

 private:
  SafetensorsFile() = default;
  std::string path_;
  const uint8_t* mapping_ = nullptr;
  size_t mapping_size_ = 0;
  const uint8_t* data_ = nullptr;
  std::vector<TensorInfo> tensors_;
  std::map<std::string, size_t> index_;
  std::map<std::string, std::string> metadata_;
};

// A tensor to be written: the caller keeps `data` alive until write_safetensors returns.
struct TensorToWrite {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  const void* data = nullptr;
  size_t nbytes = 0;
};

// Writes atomically (a temporary file renamed into place), so an interrupted save never leaves a
// truncated checkpoint where a good one stood. Tensors are laid out by descending element size, then
// name, so every tensor starts aligned to its element size, as the Hugging Face writer does.
void write_safetensors(const std::string& path, const std::vector<TensorToWrite>& tensors,
                       const std::map<std::string, std::string>& metadata = {});

// The weights of a checkpoint directory: model.safetensors, or the shards that
// model.safetensors.index.json lists in its weight_map.
class CheckpointWeights {
 public:
  static CheckpointWeights open(const std::string& directory);

  struct Entry {
    const SafetensorsFile* file;
    const TensorInfo* info;
  };
  // Throws SafetensorsError naming the tensor and the directory when absent.
  Entry get(const std::string& name) const;
  bool contains(const std::string& name) const { return entries_.count(name) > 0; }
  std::vector<std::string> names() const;

 private:
  std::string directory_;
  std::vector<std::shared_ptr<const SafetensorsFile>> files_;
  std::map<std::string, Entry> entries_;
};

}  // namespace grpo
