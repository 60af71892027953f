#include "rl/experiment/metrics_log.h"

#include <fmt/core.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <utility>
#include <vector>

#include "rl/experiment/run_directory.h"

namespace grpo {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

}  // namespace

MetricsLog::MetricsLog(const std::string& directory, int64_t keep_bytes) : path_((fs::path(directory) / "metrics.jsonl").string()) {
  fs::create_directories(directory);
  truncate_file(path_, keep_bytes);
  // The event file is derived data: rebuilt from the lines kept rather than cut at a recorded offset.
  for (const std::string& old : grpo_event_files(directory)) fs::remove(old);
  events_ = std::make_unique<EventFileWriter>(directory);
  if (keep_bytes > 0) {
    std::ifstream in(path_);
    std::string text;
    for (int64_t line_number = 1; std::getline(in, text); ++line_number) {
      json line = json::parse(text, nullptr, /*allow_exceptions=*/false);
      if (!line.is_object()) throw std::runtime_error(fmt::format("{}:{}: not a JSON object", path_, line_number));
      std::map<std::string, double> metrics;
      for (const auto& [name, value] : line.items())
        if (value.is_number()) metrics[name] = value.get<double>();
        else if (value.is_null()) metrics[name] = NAN;  // JSON has no NaN: nlohmann writes it as null
      add_event(metrics.count("step") ? static_cast<int64_t>(metrics["step"]) : line_number, metrics);
    }
    events_->flush();
  }
  jsonl_.open(path_, std::ios::app);
  if (!jsonl_) throw std::runtime_error(fmt::format("{}: cannot open for writing", path_));
  bytes_ = static_cast<int64_t>(fs::file_size(path_));
}

void MetricsLog::write(int64_t step, const std::map<std::string, double>& metrics) {
  json line(metrics);
  line["step"] = step;
  const std::string text = line.dump() + "\n";
  jsonl_ << text << std::flush;
  if (!jsonl_) throw std::runtime_error(fmt::format("{}: cannot write", path_));
  bytes_ += static_cast<int64_t>(text.size());
  add_event(step, metrics);
  events_->flush();
}

void MetricsLog::add_event(int64_t step, const std::map<std::string, double>& metrics) {
  std::vector<std::pair<std::string, float>> scalars;
  for (const auto& [name, value] : metrics)
    if (name != "step") scalars.emplace_back(name, static_cast<float>(value));
  events_->add_scalars(step, scalars);
}

}  // namespace grpo
