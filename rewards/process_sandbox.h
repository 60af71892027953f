#pragma once
// Runs one untrusted program in a bubblewrap sandbox: new user, pid, network, ipc and uts namespaces
// (no network), a read-only system (/usr only), a private 64 MiB /tmp, the work directory mounted at
// /sandbox, an empty environment; rlimits on CPU time, address space, file size, open files and
// processes (RLIMIT_NPROC counts per uid and exempts root: a root host runs each sandbox as its own
// throw-away uid; otherwise the limit is the uid's current task count plus the allowance); a
// wall-clock deadline after which the
// whole process group, and with it the sandbox's pid namespace, is killed; stdout and stderr capped.
#include <cstddef>
#include <string>
#include <vector>

namespace grpo::rewards {

struct ProcessLimits {
  double wall_seconds = 5.0;               // killed after this; CPU time is limited to the same, rounded up
  std::size_t memory_bytes = 512u << 20;   // address space of each process
  std::size_t output_bytes = 1u << 20;     // stdout beyond this kills the run
  std::size_t file_bytes = 16u << 20;      // largest file the program may write
  int processes = 64;                      // new processes and threads per run
};

struct ProcessRun {
  int exit_code = -1;          // when the process exited normally
  int signal = 0;              // when it was killed by a signal
  bool timed_out = false;      // killed at the wall-clock deadline
  bool output_capped = false;  // killed for writing more than output_bytes
  std::string stdout_text;
  std::string stderr_text;     // first 64 KiB
  bool succeeded() const { return exit_code == 0 && !timed_out && !output_capped; }
};

// Runs `command` (an absolute path and its arguments, as seen inside the sandbox) with `input` on
// stdin, in `work_dir` mounted at /sandbox (writable only when `writable_work_dir`).
// Throws std::runtime_error when the sandbox cannot be started (bwrap missing, fork failed).
ProcessRun run_in_sandbox(const std::vector<std::string>& command, const std::string& input,
                          const std::string& work_dir, bool writable_work_dir, const ProcessLimits& limits);

// Whether bubblewrap is installed where run_in_sandbox looks for it.
bool sandbox_available();

}  // namespace grpo::rewards
