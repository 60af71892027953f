#pragma once
// The JSONL file of an endpoint sampling run, written as responses arrive so that a killed run loses
// only the requests in flight. Each prompt's records (one per sample, `prompt_index` and
// `sample_index` fields) are appended together in one flushed write, in whatever order prompts
// complete. Opening the file again reads what a previous run left: complete lines only (a last line
// without its newline, torn by the kill, is dropped), and of those the prompts whose samples
// 0..n-1 are all there; the file is rewritten with exactly these before anything is appended, so a
// rerun requests only the rest and writes no duplicate. finish() rewrites it in prompt order.
#include <nlohmann/json.hpp>

#include <cstdint>
#include <fstream>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

namespace grpo::api {

// A line of an existing file that is not a sample record (not JSON, or without integer prompt_index
// and sample_index): the message names the file and the line.
struct SampleFileError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

class ResumableSampleFile {
 public:
  // Creates the file (and its folder) when it is not there. Throws SampleFileError as above, or when
  // the file cannot be written.
  ResumableSampleFile(std::string path, int64_t samples_per_prompt);

  // The records of finished prompts found in the file, by prompt_index, sample by sample.
  const std::map<int64_t, std::vector<nlohmann::json>>& finished() const { return finished_; }
  // Complete lines that were dropped because their prompt lacked samples, plus a torn last line.
  size_t dropped_lines() const { return dropped_lines_; }

  // Appends one prompt's records as one write and flushes it. Not thread-safe: one writer at a time.
  void append(const std::vector<nlohmann::json>& records);

  // Replaces the file with `records`, one per line, through a temporary file renamed over it.
  void rewrite(const std::vector<nlohmann::json>& records);

  const std::string& path() const { return path_; }

 private:
  std::string path_;
  std::map<int64_t, std::vector<nlohmann::json>> finished_;
  size_t dropped_lines_ = 0;
  std::ofstream out_;
};

}  // namespace grpo::api
