// `grpo rewards` end to end: the real executable on fixture files (skipped when the grpo executable
// has not been built, e.g. when only tests_rewards was built).
#include <doctest/doctest.h>

#include <unistd.h>

#include <array>
#include <cstdio>
#include <fstream>
#include <string>

namespace {

const std::string kGrpo = std::string(GRPO_BINARY_DIR) + "/grpo";
const std::string kFixtures = std::string(GRPO_SOURCE_DIR) + "/tests/fixtures/rewards/";

// Runs a shell command, returning its exit status and combined output.
std::pair<int, std::string> run(const std::string& command) {
  std::string output;
  FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  REQUIRE(pipe != nullptr);
  std::array<char, 4096> buffer;
  while (std::fgets(buffer.data(), buffer.size(), pipe)) output += buffer.data();
  const int status = pclose(pipe);
  return {WEXITSTATUS(status), output};
}

}  // namespace

TEST_CASE("grpo rewards scores a file and prints the per-rule table" * doctest::skip(access(kGrpo.c_str(), X_OK) != 0)) {
  const std::string out = std::string(GRPO_BINARY_DIR) + "/rewards_cli_scored.jsonl";
  const auto [status, output] = run(kGrpo + " rewards --rules " + kFixtures + "math_rules.lua --in " + kFixtures +
                                    "math_samples.jsonl --out " + out + " --threads 2");
  INFO(output);
  CHECK(status == 0);
  CHECK(output.find("4 samples") != std::string::npos);
  CHECK(output.find("accuracy") != std::string::npos);
  CHECK(output.find("no 'answer' field") != std::string::npos);  // the first failure message
  std::ifstream scored(out);
  int lines = 0;
  for (std::string line; std::getline(scored, line);) lines += line.find("\"reward\":") != std::string::npos;
  CHECK(lines == 4);

  const auto [bad_status, bad_output] =
      run(kGrpo + " rewards --rules " + kFixtures + "math_rules.lua --in " + kFixtures + "malformed.jsonl");
  CHECK(bad_status != 0);
  CHECK(bad_output.find("malformed.jsonl:2") != std::string::npos);
}
