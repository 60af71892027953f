#pragma once
// The run directory's memory of stages, so that `grpo run x.lua` rerun into the same directory resumes:
//
//   RUN_DIR/stages/03-train.json   {"stage": "train", "options": {...resolved...}, "complete": false}
//
// Each stage call of a script is numbered in call order. The first run writes the record with the
// stage's resolved options before doing any work, marks it resumable once it has saved a checkpoint,
// and complete, with its result (a checkpoint path, a metrics table), when done. A rerun finds the
// record: a complete stage returns its recorded result without redoing the work; an incomplete one
// continues from its newest checkpoint; and when the resolved options differ (a changed script, a
// different --set) from those of a complete or resumable stage, the rerun is refused with each changed
// key, because continuing under other options would silently mix two experiments. A stage that stopped
// before its first checkpoint (a typo in a path, say) has nothing to continue: a rerun with corrected
// options simply starts it again.
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace grpo {

// A rerun whose stage options differ from the recorded ones. what() names the stage, the record file
// and each changed key as "key: old -> new".
class OptionsChangedError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Keys of two option objects whose values differ, each as `key: old -> new` (values as JSON; a key
// present on one side only shows "(unset)" on the other), in key order. Empty when equal. A "content
// of <option>" fingerprint the recorded side lacks (a record from before fingerprints) is not a change.
std::vector<std::string> changed_options(const nlohmann::json& recorded, const nlohmann::json& current);

class StageRecord {
 public:
  // Opens (or creates) the record of stage call number `index` (0-based) named `stage` in `run_directory`.
  // Throws OptionsChangedError when a complete or resumable record exists with other options,
  // std::runtime_error when the record cannot be read or written.
  static StageRecord open(const std::string& run_directory, int index, const std::string& stage,
                          const nlohmann::json& options);

  // True when an earlier run finished this stage; result() is then what it returned.
  bool complete() const { return complete_; }
  const nlohmann::json& result() const { return result_; }
  // Records the stage as finished with its result (atomically: a kill leaves the old record or the new).
  void mark_complete(const nlohmann::json& result);
  // Records that the stage has saved state a rerun continues from (its options are now binding).
  void mark_resumable();
  const std::string& path() const { return path_; }
  const std::string& stage() const { return stage_; }

 private:
  std::string path_, stage_;
  nlohmann::json record_;
  bool complete_ = false;
  nlohmann::json result_;
};

// What a stage record keeps of an input file or directory, so that a rerun notices an edited input as
// it notices a changed option: "fnv1a64:<hex>" of a file's bytes; for a directory (a checkpoint), of
// the names and bytes of its files (not of its subdirectories, such as checkpoints/). Files larger than
// 256 MiB (model weights) are taken by size and modification time instead of read in full. Throws
// std::runtime_error naming the path when it cannot be read.
std::string content_fingerprint(const std::string& path);

// Writes `value` to `path` through a temporary file and a rename, so readers see the old or the new
// content, never a partial one. Throws std::runtime_error naming the path on failure.
void write_json_atomically(const std::string& path, const nlohmann::json& value);

// Parses a JSON file; throws std::runtime_error naming the path when it is missing or malformed.
nlohmann::json read_json_file(const std::string& path);

// Cuts a file to its first `bytes` bytes (the metrics a killed run wrote after its last checkpoint).
// A missing file counts as empty; throws std::runtime_error when the file is shorter than `bytes`,
// since then lines the checkpoint counted on are gone.
void truncate_file(const std::string& path, int64_t bytes);

}  // namespace grpo
