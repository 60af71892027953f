#include "api/client/resumable_sample_file.h"

#include <fmt/core.h>

#include <algorithm>
#include <filesystem>
#include <sstream>

namespace grpo::api {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

std::string jsonl_text(const std::vector<json>& records) {
  std::string text;
  for (const json& r : records) text += r.dump() + "\n";
  return text;
}

}  // namespace

ResumableSampleFile::ResumableSampleFile(std::string path, int64_t samples_per_prompt) : path_(std::move(path)) {
  const fs::path parent = fs::path(path_).parent_path();
  if (!parent.empty()) fs::create_directories(parent);
  std::map<int64_t, std::vector<json>> found;
  std::vector<int64_t> order;  // prompts in the order the file has them
  if (fs::exists(path_)) {
    std::ifstream in(path_, std::ios::binary);
    std::stringstream buffer;
    buffer << in.rdbuf();
    const std::string text = buffer.str();
    size_t begin = 0, line_number = 0;
    while (begin < text.size()) {
      const size_t end = text.find('\n', begin);
      ++line_number;
      if (end == std::string::npos) {  // torn by a kill mid-write
        ++dropped_lines_;
        break;
      }
      const std::string line = text.substr(begin, end - begin);
      begin = end + 1;
      if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
      const json r = json::parse(line, nullptr, /*allow_exceptions=*/false);
      if (r.is_discarded() || !r.is_object() || !r.contains("prompt_index") || !r["prompt_index"].is_number_integer() ||
          !r.contains("sample_index") || !r["sample_index"].is_number_integer())
        throw SampleFileError(fmt::format("{}:{}: not a sample record (a JSON object with integer prompt_index and sample_index); "
                                          "move the file away to start over",
                                          path_, line_number));
      const int64_t prompt = r["prompt_index"].get<int64_t>();
      if (!found.count(prompt)) order.push_back(prompt);
      found[prompt].push_back(r);
    }
  }
  std::vector<json> kept;
  for (int64_t prompt : order) {
    std::vector<json>& records = found[prompt];
    std::stable_sort(records.begin(), records.end(),
                     [](const json& a, const json& b) { return a["sample_index"].get<int64_t>() < b["sample_index"].get<int64_t>(); });
    bool complete = static_cast<int64_t>(records.size()) == samples_per_prompt;
    for (size_t k = 0; complete && k < records.size(); ++k) complete = records[k]["sample_index"].get<int64_t>() == static_cast<int64_t>(k);
    if (!complete) {
      dropped_lines_ += records.size();
      continue;
    }
    kept.insert(kept.end(), records.begin(), records.end());
    finished_[prompt] = std::move(records);
  }
  rewrite(kept);
  out_.open(path_, std::ios::binary | std::ios::app);
  if (!out_) throw SampleFileError(fmt::format("{}: cannot open for appending", path_));
}

void ResumableSampleFile::append(const std::vector<json>& records) {
  const std::string text = jsonl_text(records);
  out_.write(text.data(), static_cast<std::streamsize>(text.size()));
  out_.flush();
  if (!out_) throw SampleFileError(fmt::format("{}: write failed", path_));
}

void ResumableSampleFile::rewrite(const std::vector<json>& records) {
  const std::string temporary = path_ + ".partial";
  {
    std::ofstream out(temporary, std::ios::binary | std::ios::trunc);
    const std::string text = jsonl_text(records);
    out.write(text.data(), static_cast<std::streamsize>(text.size()));
    out.flush();
    if (!out) throw SampleFileError(fmt::format("{}: cannot write", temporary));
  }
  const bool reopen = out_.is_open();
  if (reopen) out_.close();
  fs::rename(temporary, path_);
  if (reopen) out_.open(path_, std::ios::binary | std::ios::app);
}

}  // namespace grpo::api
