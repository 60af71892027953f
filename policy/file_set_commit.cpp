#include "policy/file_set_commit.h"

#include <fmt/core.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <stdexcept>

namespace grpo {
namespace {

namespace fs = std::filesystem;
constexpr const char* kJournal = ".commit.json";
constexpr const char* kStagedSuffix = ".saving";

void carry_out(const fs::path& directory, const nlohmann::json& journal) {
  for (const auto& name : journal.at("renamed")) {
    const fs::path staged = directory / (name.get<std::string>() + kStagedSuffix);
    if (fs::exists(staged)) fs::rename(staged, directory / name.get<std::string>());  // done already after a crash
  }
  for (const auto& name : journal.at("removed")) fs::remove(directory / name.get<std::string>());
  fs::remove(directory / kJournal);
}

}  // namespace

void recover_interrupted_commit(const std::string& directory) {
  const fs::path dir(directory);
  std::error_code error;
  if (!fs::is_directory(dir, error)) return;
  try {
    if (fs::exists(dir / kJournal)) {
      std::ifstream in(dir / kJournal);
      carry_out(dir, nlohmann::json::parse(in));
      return;
    }
    for (const fs::directory_entry& entry : fs::directory_iterator(dir)) {
      const std::string name = entry.path().filename().string();
      if (name.size() > 7 && name.compare(name.size() - 7, 7, kStagedSuffix) == 0) fs::remove(entry.path());
    }
  } catch (const std::exception& e) {
    throw std::runtime_error(fmt::format("{}: cannot finish or undo an interrupted save: {}", directory, e.what()));
  }
}

FileSetCommit::FileSetCommit(std::string directory) : directory_(std::move(directory)) {
  fs::create_directories(directory_);
  recover_interrupted_commit(directory_);
}

std::string FileSetCommit::staged_path(const std::string& name) {
  staged_.push_back(name);
  return (fs::path(directory_) / (name + kStagedSuffix)).string();
}

void FileSetCommit::remove_on_commit(const std::string& name) { removed_.push_back(name); }

void FileSetCommit::commit() {
  const fs::path dir(directory_);
  const nlohmann::json journal = {{"renamed", staged_}, {"removed", removed_}};
  const fs::path temporary = dir / (std::string(kJournal) + ".tmp");
  {
    std::ofstream out(temporary);
    out << journal.dump() << "\n";
    if (!out) throw std::runtime_error(fmt::format("{}: write failed", temporary.string()));
  }
  fs::rename(temporary, dir / kJournal);  // the commit point
  carry_out(dir, journal);
  staged_.clear();
  removed_.clear();
}

}  // namespace grpo
