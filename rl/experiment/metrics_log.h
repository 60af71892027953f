#pragma once
// A stage's metrics log: one JSON object per step in DIR/metrics.jsonl — the source of truth that
// `grpo report`, resumption and users' scripts read — and the same scalars in a TensorBoard event file
// beside it (tensorboard_events.h), so `tensorboard --logdir RUN_DIR` shows every stage's curves.
//
// Resuming: a checkpoint records bytes() (how much of metrics.jsonl existed when it was saved); the
// resumed stage opens the log at that size, which cuts metrics.jsonl back and rewrites the event file
// from the lines kept, so that every step appears exactly once in both.
#include <cstdint>
#include <fstream>
#include <map>
#include <memory>
#include <string>

#include "rl/experiment/tensorboard_events.h"

namespace grpo {

class MetricsLog {
 public:
  // Opens DIRECTORY/metrics.jsonl cut back to `keep_bytes` (0: a new log). Throws std::runtime_error
  // naming the file when it cannot be read or written, or holds a line that is not a JSON object.
  MetricsLog(const std::string& directory, int64_t keep_bytes = 0);

  // Appends one step: `metrics` as a JSON line (with "step"), and every finite-or-not value as a
  // TensorBoard scalar tagged with its metric name at that step. Flushed, so a killed run loses nothing
  // a checkpoint could have recorded.
  void write(int64_t step, const std::map<std::string, double>& metrics);

  int64_t bytes() const { return bytes_; }  // metrics.jsonl's size after the last write
  const std::string& path() const { return path_; }

 private:
  void add_event(int64_t step, const std::map<std::string, double>& metrics);

  std::string path_;
  std::ofstream jsonl_;
  std::unique_ptr<EventFileWriter> events_;
  int64_t bytes_ = 0;
};

}  // namespace grpo
