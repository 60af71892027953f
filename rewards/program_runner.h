#pragma once
// verify.run_program: runs a model-written program against tests in a sandboxed subprocess (see
// process_sandbox.h for what the sandbox allows) and reports which tests pass.
#include <string>
#include <vector>

namespace grpo::rewards {

struct ProgramTest {
  std::string input;            // given on stdin
  std::string expected_output;  // stdout must match, ignoring trailing whitespace on lines and at the end
  std::string assertion;        // when set: code appended to the source instead; passes if it exits 0
};

enum class Verdict { passed, wrong_answer, runtime_error, time_limit, output_limit, compile_error };
const char* to_string(Verdict verdict);

struct ProgramRequest {
  std::string language;  // "python" (python3) or "cpp" (g++ -std=c++17 -O2)
  std::string source;
  std::vector<ProgramTest> tests;
  double time_limit = 5.0;       // seconds per test run
  double memory_limit_mb = 512;  // address space per process
};

struct ProgramResult {
  int passed = 0;
  int total = 0;
  std::vector<Verdict> verdicts;  // one per test, in order
  std::string compile_output;     // compiler diagnostics when compilation failed (capped)
};

// Throws std::invalid_argument for a request that cannot be run (unknown language, no tests, limits
// out of range) and std::runtime_error when the sandbox cannot start. What the program does is
// reported in the verdicts, never thrown.
ProgramResult run_program(const ProgramRequest& request);

}  // namespace grpo::rewards
