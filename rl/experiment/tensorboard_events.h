#pragma once
// TensorBoard event files, written natively: a user's `tensorboard --logdir runs/` shows every stage's
// curves without Python in the loop. metrics.jsonl stays the source of truth (metrics_log.h writes
// both); this file only knows the format.
//
// An event file is a TFRecord stream (TensorFlow's record framing):
//   uint64 length | uint32 masked_crc32c(length bytes) | data[length] | uint32 masked_crc32c(data)
// each little-endian, where masked_crc32c(x) = rotate_right(crc32c(x), 15) + 0xa282ead8. Each record
// is a serialized `tensorflow.Event` protocol buffer (tensorflow/core/util/event.proto): the first one
// carries file_version "brain.Event:2", the others a `Summary` (tensorflow/core/framework/summary.proto)
// of {tag, simple_value} scalars at a step. The protobuf encoding is written by hand: five fields of
// three wire types do not justify a protobuf dependency.
#include <cstdint>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

namespace grpo {

// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78) of `size` bytes, and the masked form TFRecord
// stores (so that a CRC of data containing CRCs stays well distributed).
uint32_t crc32c(const void* data, size_t size);
uint32_t masked_crc32c(const void* data, size_t size);

// The serialized tensorflow.Event of a file's first record, and of a step's scalars.
std::string file_version_event(double wall_time);
std::string scalars_event(double wall_time, int64_t step, const std::vector<std::pair<std::string, float>>& scalars);

// One TFRecord: the framing above around `data`.
std::string tfrecord(const std::string& data);

// Appends events to DIRECTORY/events.out.tfevents.<seconds>.<host>.grpo, a new file per writer (as
// TensorFlow's writers do; TensorBoard reads every file of a directory in name order).
class EventFileWriter {
 public:
  // Creates the file and writes its file_version record. Throws std::runtime_error naming the path
  // when it cannot be written.
  explicit EventFileWriter(const std::string& directory);
  void add_scalars(int64_t step, const std::vector<std::pair<std::string, float>>& scalars);
  // Throws std::runtime_error naming the path when a write failed.
  void flush();
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  std::ofstream out_;
};

// Event files this writer made in `directory` (the ".grpo" suffix), for a resumed stage to replace.
std::vector<std::string> grpo_event_files(const std::string& directory);

}  // namespace grpo
