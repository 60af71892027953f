#include "rl/experiment/rerun_from.h"

#include <fmt/chrono.h>
#include <fmt/core.h>
#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <filesystem>
#include <stdexcept>

#include "rl/experiment/run_directory.h"

namespace grpo {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

struct RecordFile {
  int index = 0;
  std::string stage;
  fs::path path;
};

// The records of one stages/ folder ("NN-name.json"), by number.
std::vector<RecordFile> records_in(const fs::path& folder) {
  std::vector<RecordFile> records;
  std::error_code error;
  if (!fs::is_directory(folder, error)) return records;
  for (const fs::directory_entry& entry : fs::directory_iterator(folder)) {
    const std::string name = entry.path().filename().string();
    const size_t dash = name.find('-');
    if (!entry.is_regular_file() || entry.path().extension() != ".json" || dash == 0 || dash == std::string::npos ||
        !std::all_of(name.begin(), name.begin() + static_cast<std::ptrdiff_t>(dash), [](unsigned char c) { return std::isdigit(c); }))
      continue;
    records.push_back({std::stoi(name.substr(0, dash)), entry.path().stem().string().substr(dash + 1), entry.path()});
  }
  std::sort(records.begin(), records.end(), [](const RecordFile& a, const RecordFile& b) { return a.index < b.index; });
  return records;
}

bool all_digits(const std::string& s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isdigit(c); });
}

// The record number STAGE names among rank 0's records; throws std::invalid_argument when none.
int first_index(const std::vector<RecordFile>& records, const std::string& stage) {
  if (all_digits(stage)) {
    const int index = std::stoi(stage);
    for (const RecordFile& r : records)
      if (r.index == index) return index;
  } else {
    const size_t colon = stage.find(':');
    const std::string name = stage.substr(0, colon);
    const std::string nth = colon == std::string::npos ? "1" : stage.substr(colon + 1);
    int wanted = all_digits(nth) ? std::stoi(nth) : 0, seen = 0;
    for (const RecordFile& r : records)
      if (r.stage == name && ++seen == wanted) return r.index;
  }
  std::vector<std::string> names;
  for (const RecordFile& r : records) names.push_back(r.path.filename().string());
  throw std::invalid_argument(fmt::format(
      "--rerun-from {}: no such stage record in this run directory (give a record number, a stage name, or "
      "name:N for its N-th call); the records are: {}",
      stage, names.empty() ? "none" : fmt::format("{}", fmt::join(names, ", "))));
}

std::string utc_stamp() {
  const std::time_t now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  return fmt::format("{:%Y%m%d-%H%M%S}", fmt::gmtime(now));
}

}  // namespace

std::vector<std::string> set_aside_stages_from(const std::string& run_directory, const std::string& stage) {
  const fs::path run(run_directory);
  const std::vector<RecordFile> records = records_in(run / "stages");
  const int from = first_index(records, stage);
  const fs::path aside = run / "stages" / ("replaced-" + utc_stamp());
  std::vector<std::string> moved;
  auto move = [&](const fs::path& from_path, const fs::path& to_path) {
    fs::create_directories(to_path.parent_path());
    fs::rename(from_path, to_path);
    moved.push_back(fmt::format("{} -> {}", from_path.string(), to_path.string()));
  };
  for (const RecordFile& r : records) {
    if (r.index < from) continue;
    // A stage's `out` is recorded as the script gave it: relative to the run directory, or absolute.
    const json options = read_json_file(r.path.string()).value("options", json::object());
    if (options.contains("out") && options["out"].is_string()) {
      const fs::path out(options["out"].get<std::string>());
      const fs::path checkpoints = (out.is_absolute() ? out : run / out) / "checkpoints";
      if (fs::is_directory(checkpoints)) move(checkpoints, aside / (r.path.stem().string() + "-checkpoints"));
    }
    move(r.path, aside / r.path.filename());
  }
  // The other ranks keep the same history under .ranks/N/stages (stage_options.h: begin_stage).
  std::error_code error;
  if (fs::is_directory(run / ".ranks", error))
    for (const fs::directory_entry& rank : fs::directory_iterator(run / ".ranks"))
      for (const RecordFile& r : records_in(rank.path() / "stages"))
        if (r.index >= from) move(r.path, aside / ".ranks" / rank.path().filename() / r.path.filename());
  return moved;
}

}  // namespace grpo
