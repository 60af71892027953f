#include "rewards/program_runner.h"

#include <stdlib.h>
#include <sys/stat.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <optional>
#include <stdexcept>

#include "rewards/process_sandbox.h"

namespace grpo::rewards {
namespace {

constexpr double kMaxTimeLimit = 60.0;
constexpr double kMaxMemoryMb = 8192;
constexpr std::size_t kMaxTests = 256;
constexpr double kCompileSeconds = 60.0;
constexpr std::size_t kCompileMemory = 2048u << 20;  // cc1plus needs more than a test run
constexpr std::size_t kCompileOutputBytes = 4096;

// A fresh host directory for one request, removed with everything the program wrote in it.
class WorkDirectory {
 public:
  WorkDirectory() {
    char pattern[] = "/tmp/grpo-run-XXXXXX";
    if (!mkdtemp(pattern)) throw std::runtime_error("run_program: cannot create a work directory in /tmp");
    path_ = pattern;
    chmod(path_.c_str(), 0755);
  }
  ~WorkDirectory() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  WorkDirectory(const WorkDirectory&) = delete;
  WorkDirectory& operator=(const WorkDirectory&) = delete;

  const std::string& path() const { return path_; }
  void write(const std::string& name, const std::string& text) const {
    std::ofstream file(path_ + "/" + name, std::ios::binary);
    file << text;
    if (!file) throw std::runtime_error("run_program: cannot write " + name);
  }

 private:
  std::string path_;
};

// Lines without trailing whitespace, without trailing empty lines.
std::string canonical_output(const std::string& text) {
  std::string result, line;
  auto flush_line = [&] {
    while (!line.empty() && (line.back() == ' ' || line.back() == '\t' || line.back() == '\r')) line.pop_back();
    result += line;
    result += '\n';
    line.clear();
  };
  for (char c : text) {
    if (c == '\n') {
      flush_line();
    } else {
      line += c;
    }
  }
  flush_line();
  while (result.size() >= 2 && result[result.size() - 1] == '\n' && result[result.size() - 2] == '\n') result.pop_back();
  if (result == "\n") result.clear();
  return result;
}

Verdict verdict_of(const ProcessRun& run, const ProgramTest& test) {
  if (run.output_capped) return Verdict::output_limit;
  // Killed at the deadline, or by the CPU limit (bwrap reports the child's signal as 128 + signal).
  if (run.timed_out || run.exit_code == 128 + SIGXCPU || run.signal == SIGXCPU) return Verdict::time_limit;
  if (run.exit_code != 0) return Verdict::runtime_error;
  if (!test.assertion.empty()) return Verdict::passed;
  return canonical_output(run.stdout_text) == canonical_output(test.expected_output) ? Verdict::passed
                                                                                     : Verdict::wrong_answer;
}

ProcessLimits run_limits(const ProgramRequest& request) {
  ProcessLimits limits;
  limits.wall_seconds = request.time_limit;
  limits.memory_bytes = static_cast<std::size_t>(request.memory_limit_mb * (1u << 20));
  return limits;
}

// Compiles `file` to `binary` in the sandbox; empty string on success, diagnostics otherwise.
std::optional<std::string> compile_cpp(const WorkDirectory& work, const std::string& file, const std::string& binary) {
  ProcessLimits limits;
  limits.wall_seconds = kCompileSeconds;
  limits.memory_bytes = kCompileMemory;
  limits.file_bytes = 256u << 20;
  const ProcessRun run = run_in_sandbox({"/usr/bin/g++", "-std=c++17", "-O2", "-o", binary, file}, "", work.path(),
                                        /*writable_work_dir=*/true, limits);
  if (run.succeeded()) return std::nullopt;
  std::string diagnostics = run.timed_out ? "compilation timed out\n" : "";
  diagnostics += run.stderr_text.substr(0, kCompileOutputBytes);
  return diagnostics;
}

void validate(const ProgramRequest& request) {
  if (request.language != "python" && request.language != "cpp") {
    throw std::invalid_argument("run_program: language must be \"python\" or \"cpp\", got \"" + request.language + "\"");
  }
  if (request.tests.empty()) throw std::invalid_argument("run_program: no tests");
  if (request.tests.size() > kMaxTests) throw std::invalid_argument("run_program: more than 256 tests");
  if (!(request.time_limit > 0 && request.time_limit <= kMaxTimeLimit)) {
    throw std::invalid_argument("run_program: time_limit must be in (0, 60] seconds");
  }
  if (!(request.memory_limit_mb >= 16 && request.memory_limit_mb <= kMaxMemoryMb)) {
    throw std::invalid_argument("run_program: memory_limit must be in [16, 8192] MiB");
  }
}

}  // namespace

const char* to_string(Verdict verdict) {
  switch (verdict) {
    case Verdict::passed: return "passed";
    case Verdict::wrong_answer: return "wrong_answer";
    case Verdict::runtime_error: return "runtime_error";
    case Verdict::time_limit: return "time_limit";
    case Verdict::output_limit: return "output_limit";
    case Verdict::compile_error: return "compile_error";
  }
  return "?";
}

ProgramResult run_program(const ProgramRequest& request) {
  validate(request);
  ProgramResult result;
  result.total = static_cast<int>(request.tests.size());
  WorkDirectory work;
  const ProcessLimits limits = run_limits(request);
  const bool python = request.language == "python";

  // Stdin/stdout tests share one program (compiled once); assertion tests each get their own.
  bool main_ready = false, main_failed = false;
  for (std::size_t i = 0; i < request.tests.size(); ++i) {
    const ProgramTest& test = request.tests[i];
    std::vector<std::string> command;
    if (test.assertion.empty()) {
      if (!main_ready && !main_failed) {
        work.write(python ? "main.py" : "main.cpp", request.source);
        if (!python) {
          if (auto diagnostics = compile_cpp(work, "main.cpp", "main")) {
            result.compile_output = *diagnostics;
            main_failed = true;
          }
        }
        main_ready = !main_failed;
      }
      if (main_failed) {
        result.verdicts.push_back(Verdict::compile_error);
        continue;
      }
      command = python ? std::vector<std::string>{"/usr/bin/python3", "-I", "main.py"}
                       : std::vector<std::string>{"/sandbox/main"};
    } else {
      const std::string stem = "test_" + std::to_string(i);
      work.write(stem + (python ? ".py" : ".cpp"), request.source + "\n\n" + test.assertion + "\n");
      if (!python) {
        if (auto diagnostics = compile_cpp(work, stem + ".cpp", stem)) {
          if (result.compile_output.empty()) result.compile_output = *diagnostics;
          result.verdicts.push_back(Verdict::compile_error);
          continue;
        }
      }
      command = python ? std::vector<std::string>{"/usr/bin/python3", "-I", stem + ".py"}
                       : std::vector<std::string>{"/sandbox/" + stem};
    }
    const ProcessRun run = run_in_sandbox(command, test.input, work.path(), /*writable_work_dir=*/false, limits);
    result.verdicts.push_back(verdict_of(run, test));
  }
  for (Verdict verdict : result.verdicts) result.passed += verdict == Verdict::passed;
  return result;
}

}  // namespace grpo::rewards
