// The output file of endpoint sampling across kills and reruns (api/client/resumable_sample_file.h).
#include <doctest/doctest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "api/client/resumable_sample_file.h"

using namespace grpo::api;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

std::string temporary_path(const std::string& name) {
  const fs::path dir = fs::temp_directory_path() / ("grpo_api_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  return (dir / name).string();
}

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

json record(int prompt, int sample) { return {{"prompt_index", prompt}, {"sample_index", sample}, {"completion", "c"}}; }

}  // namespace

TEST_CASE("api: a rerun keeps the prompts whose samples are all there, drops a torn line and a partial prompt") {
  const std::string path = temporary_path("resume.jsonl");
  {
    std::ofstream out(path);
    out << record(2, 0).dump() << "\n" << record(2, 1).dump() << "\n";  // prompt 2: complete
    out << record(0, 1).dump() << "\n";                                 // prompt 0: sample 0 missing
    out << record(1, 1).dump() << "\n" << record(1, 0).dump() << "\n";  // prompt 1: complete, out of order
    out << record(3, 0).dump() << "\n" << R"({"prompt_index": 3, "sampl)";  // prompt 3: torn mid-line
  }
  ResumableSampleFile file(path, /*samples_per_prompt=*/2);
  REQUIRE(file.finished().size() == 2);
  CHECK(file.finished().count(1) == 1);
  CHECK(file.finished().count(2) == 1);
  CHECK(file.finished().at(1)[0]["sample_index"] == 0);  // sorted by sample
  CHECK(file.dropped_lines() == 3);                      // the torn line, prompt 0's and prompt 3's lines
  // The file holds exactly the kept records before anything is appended.
  CHECK(read_text(path) == record(2, 0).dump() + "\n" + record(2, 1).dump() + "\n" + record(1, 0).dump() + "\n" +
                               record(1, 1).dump() + "\n");
  file.append({record(0, 0), record(0, 1)});
  CHECK(read_text(path).size() == 6 * (record(0, 0).dump().size() + 1));
  file.rewrite({record(0, 0), record(0, 1)});
  CHECK(read_text(path) == record(0, 0).dump() + "\n" + record(0, 1).dump() + "\n");
  file.append({record(1, 0)});  // appending goes on after a rewrite
  CHECK(read_text(path) == record(0, 0).dump() + "\n" + record(0, 1).dump() + "\n" + record(1, 0).dump() + "\n");
  fs::remove_all(fs::path(path).parent_path());
}

TEST_CASE("api: a complete line that is not a sample record is an error naming the file and line") {
  const std::string path = temporary_path("bad.jsonl");
  {
    std::ofstream out(path);
    out << record(0, 0).dump() << "\n" << R"({"completion": "no indices"})" << "\n";
  }
  CHECK_THROWS_WITH_AS(ResumableSampleFile(path, 1), doctest::Contains("bad.jsonl:2: not a sample record"), SampleFileError);
  fs::remove_all(fs::path(path).parent_path());
}

TEST_CASE("api: a new file is created with its folder, empty") {
  const std::string path = temporary_path("nested/out.jsonl");
  ResumableSampleFile file(path, 3);
  CHECK(file.finished().empty());
  CHECK(file.dropped_lines() == 0);
  CHECK(fs::exists(path));
  CHECK(fs::file_size(path) == 0);
  fs::remove_all(fs::path(path).parent_path().parent_path());
}
