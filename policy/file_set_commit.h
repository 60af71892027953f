#pragma once
// Replacing a set of files in a directory so that a crash at any moment leaves the old set or the new one,
// never a mix: a checkpoint is config.json, generation_config.json and its weights (model.safetensors, or
// an index and shards), and a kill between writing the new weights and the new config, or between two
// shards, must not leave a directory that loads a model no run ever had.
//
//   1. every new file is written under a staging name, NAME.saving, beside the old ones (loaders ignore
//      those names: none ends in .json or .safetensors);
//   2. the journal .commit.json lists the renames and the old files to delete, written atomically (a
//      temporary file renamed into place): this rename is the commit point;
//   3. the renames and deletions are carried out, then the journal is deleted.
//
// A crash before 2 leaves the old set (and staged files, deleted by the next save or load); after it, the
// next save or load (recover_interrupted_commit) carries the journal out, so the new set is complete. Safe
// against a killed process; against power loss only as far as the file system keeps rename order.
#include <string>
#include <vector>

namespace grpo {

class FileSetCommit {
 public:
  // Recovers an interrupted commit in `directory` first (creating the directory if needed).
  explicit FileSetCommit(std::string directory);
  // Where to write the new content of `name` (a file name in the directory).
  std::string staged_path(const std::string& name);
  // An old file the new set does not have (a shard, a stale index): deleted after the renames.
  void remove_on_commit(const std::string& name);
  // Steps 2 and 3. Throws std::runtime_error naming the file on an I/O error.
  void commit();

 private:
  std::string directory_;
  std::vector<std::string> staged_, removed_;
};

// Carries out a journal a crash left in `directory`, or deletes staged files no journal names. Throws
// std::runtime_error naming the directory when it cannot (a read-only directory holding a journal).
void recover_interrupted_commit(const std::string& directory);

}  // namespace grpo
