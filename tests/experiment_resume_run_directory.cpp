// The run directory's stage records: what a rerun reuses, what it refuses, and the log truncation that
// keeps resumed metrics free of duplicates.
#include <doctest/doctest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "rl/experiment/run_directory.h"
#include "rl/experiment/shuffled_cursor.h"

using namespace grpo;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {
std::string fresh_run_path(const char* name) {
  fs::path p = fs::temp_directory_path() / (std::string("grpo-") + name + "-" + std::to_string(getpid()));
  fs::remove_all(p);
  return p.string();
}
std::string read_all(const std::string& path) {
  std::stringstream s;
  s << std::ifstream(path).rdbuf();
  return s.str();
}
}  // namespace

TEST_CASE("changed_options names each changed, added and removed key with both values") {
  json before = {{"lr", 0.001}, {"steps", 10}, {"prompt", "q{x}"}, {"seed", 1}};
  json after = {{"lr", 0.002}, {"steps", 10}, {"prompt", "Q{x}"}, {"top_p", 0.9}};
  std::vector<std::string> changes = changed_options(before, after);
  REQUIRE(changes.size() == 4);
  CHECK(changes[0] == "lr: 0.001 -> 0.002");
  CHECK(changes[1] == "prompt: \"q{x}\" -> \"Q{x}\"");
  CHECK(changes[2] == "seed: 1 -> (unset)");
  CHECK(changes[3] == "top_p: (unset) -> 0.9");
  CHECK(changed_options(before, before).empty());
}

TEST_CASE("changed_options: an input's content fingerprint counts, unless the record predates fingerprints") {
  json recorded = {{"rules", "r.lua"}, {"content of rules", "fnv1a64:0000000000000001"}};
  json edited = {{"rules", "r.lua"}, {"content of rules", "fnv1a64:0000000000000002"}};
  REQUIRE(changed_options(recorded, edited).size() == 1);
  CHECK(changed_options(recorded, edited)[0] == "content of rules: \"fnv1a64:0000000000000001\" -> \"fnv1a64:0000000000000002\"");
  CHECK(changed_options(json{{"rules", "r.lua"}}, edited).empty());  // an older record: nothing to compare
}

TEST_CASE("content_fingerprint: FNV-1a of a file's bytes; a directory's file names and bytes, subfolders aside") {
  const std::string dir = fresh_run_path("fingerprint");
  fs::create_directories(dir + "/model/checkpoints");
  std::ofstream(dir + "/a.txt") << "a";
  // FNV-1a 64 of the single byte 'a', worked by hand: (14695981039346656037 ^ 0x61) * 1099511628211 mod 2^64.
  CHECK(content_fingerprint(dir + "/a.txt") == "fnv1a64:af63dc4c8601ec8c");
  std::ofstream(dir + "/model/config.json") << "{}";
  const std::string before = content_fingerprint(dir + "/model");
  std::ofstream(dir + "/model/checkpoints/state.json") << "{\"step\": 1}";
  CHECK(content_fingerprint(dir + "/model") == before);  // subfolders are not part of it
  // Nor is a tokenizer's table cache, which its first load writes beside tokenizer.json.
  std::ofstream(dir + "/model/tokenizer.json.grpo-cache") << "tables";
  std::ofstream(dir + "/model/tokenizer.json.grpo-cache.tmp.a1b2c3") << "tab";
  CHECK(content_fingerprint(dir + "/model") == before);
  std::ofstream(dir + "/model/config.json") << "{ }";
  CHECK(content_fingerprint(dir + "/model") != before);
  fs::remove_all(dir);
}

TEST_CASE("a stage record: created incomplete, reused when complete, refused when options change after a checkpoint") {
  const std::string run = fresh_run_path("stages");
  json options = {{"lr", 0.001}, {"steps", 3}};
  {
    StageRecord r = StageRecord::open(run, 2, "train", options);
    CHECK_FALSE(r.complete());
    CHECK(r.path() == run + "/stages/02-train.json");
    CHECK(read_json_file(r.path())["complete"] == false);  // written before any work starts
  }
  {
    // Stopped before saving anything to continue from: a rerun may change options and starts over.
    json fixed = options;
    fixed["steps"] = 4;
    StageRecord r = StageRecord::open(run, 2, "train", fixed);
    CHECK(read_json_file(r.path())["options"]["steps"] == 4);
  }
  {
    StageRecord r = StageRecord::open(run, 2, "train", options);
    r.mark_resumable();  // a checkpoint exists: the options are binding from here on
  }
  json changed = options;
  changed["lr"] = 0.002;
  CHECK_THROWS_WITH_AS(StageRecord::open(run, 2, "train", changed), doctest::Contains("lr: 0.001 -> 0.002"), OptionsChangedError);
  {
    StageRecord r = StageRecord::open(run, 2, "train", options);  // a rerun of an interrupted stage
    CHECK_FALSE(r.complete());
    r.mark_complete(run + "/train");
  }
  StageRecord again = StageRecord::open(run, 2, "train", options);
  CHECK(again.complete());
  CHECK(again.result() == run + "/train");

  CHECK_THROWS_WITH_AS(StageRecord::open(run, 2, "train", changed), doctest::Contains("lr: 0.001 -> 0.002"), OptionsChangedError);
  CHECK_THROWS_WITH_AS(StageRecord::open(run, 2, "train", changed), doctest::Contains("02-train.json"), OptionsChangedError);
  // Another call number is another stage.
  CHECK_FALSE(StageRecord::open(run, 3, "train", changed).complete());
  fs::remove_all(run);
}

TEST_CASE("a corrupt stage record is an error naming the file") {
  const std::string run = fresh_run_path("corrupt");
  fs::create_directories(run + "/stages");
  std::ofstream(run + "/stages/00-init.json") << "{\"stage\": ";
  CHECK_THROWS_WITH_AS(StageRecord::open(run, 0, "init", json::object()), doctest::Contains("00-init.json: not valid JSON"),
                       std::runtime_error);
  fs::remove_all(run);
}

TEST_CASE("write_json_atomically replaces the file and leaves no temporary behind") {
  const std::string dir = fresh_run_path("atomic");
  write_json_atomically(dir + "/a/b.json", {{"x", 1}});
  write_json_atomically(dir + "/a/b.json", {{"x", 2}});
  CHECK(read_json_file(dir + "/a/b.json")["x"] == 2);
  CHECK_FALSE(fs::exists(dir + "/a/b.json.tmp"));
  fs::remove_all(dir);
}

TEST_CASE("truncate_file cuts a log back to a checkpoint's size, and refuses to grow one") {
  const std::string dir = fresh_run_path("truncate");
  fs::create_directories(dir);
  const std::string path = dir + "/metrics.jsonl";
  std::ofstream(path) << "{\"step\":0}\n{\"step\":1}\n{\"step\":2}\n";
  truncate_file(path, 22);
  CHECK(read_all(path) == "{\"step\":0}\n{\"step\":1}\n");
  truncate_file(path, 22);  // already that size: unchanged
  CHECK(fs::file_size(path) == 22);
  CHECK_THROWS_WITH_AS(truncate_file(path, 40), doctest::Contains("fewer than the 40"), std::runtime_error);
  truncate_file(dir + "/missing.jsonl", 0);  // a run killed before its first line
  fs::remove_all(dir);
}

TEST_CASE("a restored data cursor draws what the original would have, across epochs") {
  ShuffledCursor a(5, 7);
  for (int i = 0; i < 7; ++i) a.next();  // into the second pass
  ShuffledCursor b(5, 7);
  b.restore(a.state());
  std::vector<size_t> from_a, from_b;
  for (int i = 0; i < 12; ++i) {
    from_a.push_back(a.next());
    from_b.push_back(b.next());
  }
  CHECK(from_a == from_b);
  // Each pass is a permutation.
  ShuffledCursor c(5, 7);
  std::vector<size_t> pass;
  for (int i = 0; i < 5; ++i) pass.push_back(c.next());
  std::sort(pass.begin(), pass.end());
  CHECK(pass == std::vector<size_t>{0, 1, 2, 3, 4});
  CHECK_THROWS_WITH_AS(ShuffledCursor(6, 7).restore(a.state()), doctest::Contains("5 items, this one has 6"), std::runtime_error);
}
