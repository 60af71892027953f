#include "rl/experiment/run_directory.h"

#include <fmt/core.h>
#include <fmt/format.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>

namespace grpo {
namespace {
namespace fs = std::filesystem;
using nlohmann::json;
}  // namespace

std::vector<std::string> changed_options(const json& recorded, const json& current) {
  std::set<std::string> keys;
  for (auto it = recorded.begin(); it != recorded.end(); ++it) keys.insert(it.key());
  for (auto it = current.begin(); it != current.end(); ++it) keys.insert(it.key());
  std::vector<std::string> changes;
  for (const std::string& key : keys) {
    const bool before = recorded.contains(key), after = current.contains(key);
    if (before && after && recorded[key] == current[key]) continue;
    // Records written before inputs were fingerprinted have no "content of" keys: nothing to compare.
    if (!before && key.rfind("content of ", 0) == 0) continue;
    changes.push_back(fmt::format("{}: {} -> {}", key, before ? recorded[key].dump() : "(unset)",
                                  after ? current[key].dump() : "(unset)"));
  }
  return changes;
}

StageRecord StageRecord::open(const std::string& run_directory, int index, const std::string& stage, const json& options) {
  StageRecord r;
  r.stage_ = stage;
  r.path_ = fmt::format("{}/stages/{:02d}-{}.json", run_directory, index, stage);
  if (fs::exists(r.path_)) {
    r.record_ = read_json_file(r.path_);
    r.complete_ = r.record_.value("complete", false);
    const bool binding = r.complete_ || r.record_.value("resumable", false);
    std::vector<std::string> changes = changed_options(r.record_.value("options", json::object()), options);
    if (binding && !changes.empty())
      throw OptionsChangedError(fmt::format(
          "grpo.{}: this run directory already holds this stage with other options or inputs ({}):\n  {}\nrerun with "
          "the recorded options and inputs to {} it, use another run directory (--out) for the new ones, or run "
          "this stage and the later ones again with `grpo run ... --rerun-from {:02d}` (their records and "
          "checkpoints are set aside, the earlier stages reused)",
          stage, r.path_, fmt::join(changes, "\n  "), r.complete_ ? "reuse" : "resume", index));
    if (binding) {
      if (r.complete_) r.result_ = r.record_.value("result", json());
      return r;
    }
  }
  r.record_ = {{"stage", stage}, {"options", options}, {"complete", false}};
  write_json_atomically(r.path_, r.record_);
  return r;
}

namespace {

constexpr uint64_t kFnvOffset = 14695981039346656037ull, kFnvPrime = 1099511628211ull;
constexpr uintmax_t kHashedFileLimit = 256ull << 20;

void fnv1a(uint64_t& hash, const char* bytes, size_t size) {
  for (size_t i = 0; i < size; ++i) hash = (hash ^ static_cast<unsigned char>(bytes[i])) * kFnvPrime;
}

void hash_file(uint64_t& hash, const fs::path& path) {
  const uintmax_t size = fs::file_size(path);
  if (size > kHashedFileLimit) {  // weights: size and modification time stand in for the bytes
    const std::string stamp =
        fmt::format("{}:{}", size, static_cast<int64_t>(fs::last_write_time(path).time_since_epoch().count()));
    fnv1a(hash, stamp.data(), stamp.size());
    return;
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(fmt::format("{}: cannot read", path.string()));
  char buffer[1 << 16];
  while (in.read(buffer, sizeof buffer) || in.gcount() > 0) fnv1a(hash, buffer, static_cast<size_t>(in.gcount()));
}

}  // namespace

std::string content_fingerprint(const std::string& path) {
  uint64_t hash = kFnvOffset;
  if (fs::is_directory(path)) {
    std::vector<fs::path> files;
    for (const fs::directory_entry& e : fs::directory_iterator(path)) {
      // A tokenizer's table cache (policy/tokenizer/table_cache.h: "tokenizer.json.grpo-cache" and its
      // temporary files) appears beside tokenizer.json on the first load: derived, not an input.
      if (e.is_regular_file() && e.path().filename().string().find(".grpo-cache") == std::string::npos)
        files.push_back(e.path());
    }
    std::sort(files.begin(), files.end());
    for (const fs::path& f : files) {
      const std::string name = f.filename().string();
      fnv1a(hash, name.data(), name.size() + 1);  // with the terminating NUL: names and bytes never run together
      hash_file(hash, f);
    }
  } else {
    hash_file(hash, path);
  }
  return fmt::format("fnv1a64:{:016x}", hash);
}

void StageRecord::mark_resumable() {
  if (record_.value("resumable", false)) return;
  record_["resumable"] = true;
  write_json_atomically(path_, record_);
}

void StageRecord::mark_complete(const json& result) {
  record_["complete"] = true;
  record_["result"] = result;
  write_json_atomically(path_, record_);
  complete_ = true;
  result_ = result;
}

void write_json_atomically(const std::string& path, const json& value) {
  fs::path target(path);
  if (target.has_parent_path()) fs::create_directories(target.parent_path());
  const std::string temporary = path + ".tmp";
  {
    std::ofstream out(temporary, std::ios::trunc);
    out << value.dump(2) << "\n";
    out.flush();
    if (!out) throw std::runtime_error(fmt::format("{}: write failed", temporary));
  }
  std::error_code error;
  fs::rename(temporary, target, error);
  if (error) throw std::runtime_error(fmt::format("{}: cannot replace it: {}", path, error.message()));
}

json read_json_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error(fmt::format("{}: cannot open", path));
  try {
    return json::parse(in);
  } catch (const json::parse_error& e) {
    throw std::runtime_error(fmt::format("{}: not valid JSON: {}", path, e.what()));
  }
}

void truncate_file(const std::string& path, int64_t bytes) {
  const int64_t size = fs::exists(path) ? static_cast<int64_t>(fs::file_size(path)) : 0;
  if (size < bytes)
    throw std::runtime_error(fmt::format("{}: holds {} bytes, fewer than the {} its checkpoint recorded", path, size, bytes));
  if (size > bytes) fs::resize_file(path, static_cast<uintmax_t>(bytes));
}

}  // namespace grpo
