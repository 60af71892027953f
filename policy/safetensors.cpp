#include "policy/safetensors.h"

#include <fcntl.h>
#include <fmt/core.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

namespace grpo {
namespace {

using nlohmann::json;

// Bounds a header before it is parsed: a corrupted length field must not make us parse gigabytes.
constexpr uint64_t kMaxHeaderBytes = 100u << 20;

struct DTypeEntry {
  DType dtype;
  const char* name;
  size_t size;
};
constexpr DTypeEntry kDTypes[] = {
    {DType::F64, "F64", 8}, {DType::F32, "F32", 4},     {DType::F16, "F16", 2},
    {DType::BF16, "BF16", 2}, {DType::I64, "I64", 8},   {DType::I32, "I32", 4},
    {DType::I16, "I16", 2}, {DType::I8, "I8", 1},       {DType::U8, "U8", 1},
    {DType::Bool, "BOOL", 1}, {DType::F8_E4M3, "F8_E4M3", 1},
};

bool parse_dtype(const std::string& name, DType& out) {
  for (const DTypeEntry& e : kDTypes)
    if (name == e.name) {
      out = e.dtype;
      return true;
    }
  return false;
}

uint64_t read_le64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

}  // namespace

const char* dtype_name(DType dtype) {
  for (const DTypeEntry& e : kDTypes)
    if (e.dtype == dtype) return e.name;
  return "?";
}

size_t dtype_size(DType dtype) {
  for (const DTypeEntry& e : kDTypes)
    if (e.dtype == dtype) return e.size;
  return 0;
}

int64_t TensorInfo::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::shared_ptr<const SafetensorsFile> SafetensorsFile::open(const std::string& path) {
  auto fail = [&](const std::string& what) -> SafetensorsError {
    return SafetensorsError(fmt::format("{}: {}", path, what));
  };
  int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) throw fail(fmt::format("cannot open: {}", std::strerror(errno)));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    ::close(fd);
    throw fail("cannot stat");
  }
  const size_t size = static_cast<size_t>(st.st_size);
  if (size < 8) {
    ::close(fd);
    throw fail(fmt::format("file is {} bytes, too short for the 8-byte header length", size));
  }
  void* map = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
  ::close(fd);
  if (map == MAP_FAILED) throw fail("cannot memory-map");

  std::shared_ptr<SafetensorsFile> file(new SafetensorsFile());
  file->path_ = path;
  file->mapping_ = static_cast<const uint8_t*>(map);
  file->mapping_size_ = size;

  const uint64_t header_len = read_le64(file->mapping_);
  if (header_len > kMaxHeaderBytes) throw fail(fmt::format("header length {} exceeds the 100 MiB limit: corrupted?", header_len));
  if (8 + header_len > size)
    throw fail(fmt::format("header length {} runs past the end of the {}-byte file: truncated?", header_len, size));
  file->data_ = file->mapping_ + 8 + header_len;
  const size_t data_size = size - 8 - header_len;

  json header;
  try {
    header = json::parse(file->mapping_ + 8, file->mapping_ + 8 + header_len);
  } catch (const json::parse_error& e) {
    throw fail(fmt::format("header is not valid JSON: {}", e.what()));
  }
  if (!header.is_object()) throw fail("header is not a JSON object");

  for (auto it = header.begin(); it != header.end(); ++it) {
    const std::string& name = it.key();
    const json& entry = it.value();
    if (name == "__metadata__") {
      if (!entry.is_object()) throw fail("__metadata__ is not an object");
      for (auto m = entry.begin(); m != entry.end(); ++m) {
        if (!m.value().is_string()) throw fail(fmt::format("__metadata__.{} is not a string", m.key()));
        file->metadata_[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    auto bad = [&](const std::string& what) { return fail(fmt::format("tensor \"{}\": {}", name, what)); };
    if (!entry.is_object() || !entry.contains("dtype") || !entry.contains("shape") || !entry.contains("data_offsets"))
      throw bad("entry must be an object with dtype, shape and data_offsets");
    TensorInfo info;
    info.name = name;
    if (!entry["dtype"].is_string() || !parse_dtype(entry["dtype"].get<std::string>(), info.dtype))
      throw bad(fmt::format("unknown dtype {}", entry["dtype"].dump()));
    if (!entry["shape"].is_array()) throw bad("shape is not an array");
    uint64_t numel = 1;
    for (const json& d : entry["shape"]) {
      if (!d.is_number_unsigned()) throw bad(fmt::format("shape {} has a non-integer or negative dimension", entry["shape"].dump()));
      // A corrupted shape must not overflow the size computation into a plausible number.
      if (__builtin_mul_overflow(numel, d.get<uint64_t>(), &numel) || numel > size)
        throw bad(fmt::format("shape {} has more elements than the file has bytes", entry["shape"].dump()));
      info.shape.push_back(d.get<int64_t>());
    }
    const json& offsets = entry["data_offsets"];
    if (!offsets.is_array() || offsets.size() != 2 || !offsets[0].is_number_unsigned() || !offsets[1].is_number_unsigned())
      throw bad("data_offsets must be two non-negative integers");
    info.begin = offsets[0].get<size_t>();
    info.end = offsets[1].get<size_t>();
    if (info.begin > info.end || info.end > data_size)
      throw bad(fmt::format("data_offsets [{}, {}) outside the {}-byte data section: truncated?", info.begin, info.end, data_size));
    const size_t expected = static_cast<size_t>(info.numel()) * dtype_size(info.dtype);
    if (info.end - info.begin != expected)
      throw bad(fmt::format("{} bytes for shape {} of {} (expected {})", info.end - info.begin,
                            entry["shape"].dump(), dtype_name(info.dtype), expected));
    file->tensors_.push_back(std::move(info));
  }

  // The byte ranges must tile the data section: overlap means corruption, a gap or a short tail a
  // truncated or hand-edited file.
  std::vector<const TensorInfo*> by_offset;
  for (const TensorInfo& t : file->tensors_) by_offset.push_back(&t);
  std::sort(by_offset.begin(), by_offset.end(),
            [](const TensorInfo* a, const TensorInfo* b) { return a->begin < b->begin; });
  size_t cursor = 0;
  for (const TensorInfo* t : by_offset) {
    if (t->begin != cursor)
      throw fail(fmt::format("tensor \"{}\" starts at byte {} but the previous tensor ends at {}", t->name, t->begin, cursor));
    cursor = t->end;
  }
  if (cursor != data_size)
    throw fail(fmt::format("tensors cover {} bytes but the data section has {}", cursor, data_size));

  std::sort(file->tensors_.begin(), file->tensors_.end(),
            [](const TensorInfo& a, const TensorInfo& b) { return a.begin < b.begin; });
  for (size_t i = 0; i < file->tensors_.size(); ++i) file->index_[file->tensors_[i].name] = i;
  return file;
}

SafetensorsFile::~SafetensorsFile() {
  if (mapping_) ::munmap(const_cast<uint8_t*>(mapping_), mapping_size_);
}

const TensorInfo* SafetensorsFile::find(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

void write_safetensors(const std::string& path, const std::vector<TensorToWrite>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  std::vector<const TensorToWrite*> order;
  for (const TensorToWrite& t : tensors) {
    int64_t numel = 1;
    for (int64_t d : t.shape) numel *= d;
    if (static_cast<size_t>(numel) * dtype_size(t.dtype) != t.nbytes)
      throw SafetensorsError(fmt::format("{}: tensor \"{}\" has {} bytes, its shape and dtype need {}", path, t.name,
                                         t.nbytes, static_cast<size_t>(numel) * dtype_size(t.dtype)));
    order.push_back(&t);
  }
  std::sort(order.begin(), order.end(), [](const TensorToWrite* a, const TensorToWrite* b) {
    size_t sa = dtype_size(a->dtype), sb = dtype_size(b->dtype);
    return sa != sb ? sa > sb : a->name < b->name;
  });

  json header = json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  size_t offset = 0;
  for (const TensorToWrite* t : order) {
    if (header.contains(t->name)) throw SafetensorsError(fmt::format("{}: tensor \"{}\" given twice", path, t->name));
    header[t->name] = {{"dtype", dtype_name(t->dtype)}, {"shape", t->shape}, {"data_offsets", {offset, offset + t->nbytes}}};
    offset += t->nbytes;
  }
  std::string header_text = header.dump();
  header_text.append((8 - header_text.size() % 8) % 8, ' ');  // data section starts 8-byte aligned

  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) throw SafetensorsError(fmt::format("{}: cannot write", tmp));
    uint8_t len[8];
    uint64_t n = header_text.size();
    for (int i = 0; i < 8; ++i) len[i] = static_cast<uint8_t>(n >> (8 * i));
    out.write(reinterpret_cast<const char*>(len), 8);
    out.write(header_text.data(), static_cast<std::streamsize>(header_text.size()));
    for (const TensorToWrite* t : order) out.write(static_cast<const char*>(t->data), static_cast<std::streamsize>(t->nbytes));
    out.flush();
    if (!out) throw SafetensorsError(fmt::format("{}: write failed (disk full?)", tmp));
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0)
    throw SafetensorsError(fmt::format("{}: cannot rename into place: {}", path, std::strerror(errno)));
}

CheckpointWeights CheckpointWeights::open(const std::string& directory) {
  CheckpointWeights w;
  w.directory_ = directory;
  const std::string index_path = directory + "/model.safetensors.index.json";
  std::ifstream index_file(index_path);
  if (!index_file) {
    auto file = SafetensorsFile::open(directory + "/model.safetensors");
    for (const TensorInfo& t : file->tensors()) w.entries_[t.name] = {file.get(), &t};
    w.files_.push_back(std::move(file));
    return w;
  }
  json index;
  try {
    std::stringstream text;
    text << index_file.rdbuf();
    index = json::parse(text.str());
  } catch (const json::parse_error& e) {
    throw SafetensorsError(fmt::format("{}: not valid JSON: {}", index_path, e.what()));
  }
  if (!index.is_object() || !index.contains("weight_map") || !index["weight_map"].is_object())
    throw SafetensorsError(fmt::format("{}: missing the \"weight_map\" object", index_path));
  std::map<std::string, const SafetensorsFile*> shards;
  for (auto it = index["weight_map"].begin(); it != index["weight_map"].end(); ++it) {
    if (!it.value().is_string())
      throw SafetensorsError(fmt::format("{}: weight_map.\"{}\" is not a file name", index_path, it.key()));
    const std::string shard = it.value().get<std::string>();
    if (shard.find('/') != std::string::npos)
      throw SafetensorsError(fmt::format("{}: weight_map.\"{}\" names a path outside the directory: {}", index_path, it.key(), shard));
    if (!shards.count(shard)) {
      w.files_.push_back(SafetensorsFile::open(directory + "/" + shard));
      shards[shard] = w.files_.back().get();
    }
    const TensorInfo* info = shards[shard]->find(it.key());
    if (!info)
      throw SafetensorsError(fmt::format("{}: weight_map puts \"{}\" in {}, which has no such tensor", index_path, it.key(), shard));
    w.entries_[it.key()] = {shards[shard], info};
  }
  return w;
}

CheckpointWeights::Entry CheckpointWeights::get(const std::string& name) const {
  auto it = entries_.find(name);
  if (it == entries_.end()) throw SafetensorsError(fmt::format("{}: checkpoint has no tensor \"{}\"", directory_, name));
  return it->second;
}

std::vector<std::string> CheckpointWeights::names() const {
  std::vector<std::string> out;
  for (const auto& [name, entry] : entries_) out.push_back(name);
  return out;
}

}  // namespace grpo
