#include "rewards/process_sandbox.h"

#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <stdexcept>

namespace grpo::rewards {
namespace {

constexpr const char* kBubblewrap = "/usr/bin/bwrap";
constexpr std::size_t kStderrBytes = 64u << 10;
constexpr int kOpenFiles = 64;
// Throw-away uids for sandboxed runs when the host is root: RLIMIT_NPROC counts processes per uid
// and does not apply to root, so each run gets its own unprivileged uid and a fork bomb in one run
// cannot starve another.
constexpr int kFirstSandboxUid = 61000;
constexpr int kSandboxUids = 1000;

std::atomic<int> next_uid_slot{0};

// Tasks (threads) now running under `uid`: what RLIMIT_NPROC counts. Without root the sandbox runs
// as the host's own uid, so its process limit is this many plus the run's allowance.
int tasks_of_uid(uid_t uid) {
  int tasks = 0;
  DIR* proc = opendir("/proc");
  if (!proc) return 0;
  while (dirent* entry = readdir(proc)) {
    if (entry->d_name[0] < '0' || entry->d_name[0] > '9') continue;
    char path[300];
    std::snprintf(path, sizeof path, "/proc/%s/status", entry->d_name);
    FILE* status = std::fopen(path, "r");
    if (!status) continue;
    char line[256];
    bool mine = false;
    while (std::fgets(line, sizeof line, status)) {
      unsigned real_uid = 0;
      int threads = 0;
      if (std::sscanf(line, "Uid: %u", &real_uid) == 1) mine = real_uid == uid;
      if (mine && std::sscanf(line, "Threads: %d", &threads) == 1) tasks += threads;
    }
    std::fclose(status);
  }
  closedir(proc);
  return tasks;
}

std::vector<std::string> bubblewrap_arguments(const std::vector<std::string>& command, const std::string& work_dir,
                                              bool writable_work_dir) {
  std::vector<std::string> args = {
      kBubblewrap, "--unshare-all", "--die-with-parent", "--new-session",
      "--ro-bind", "/usr", "/usr",
      "--proc", "/proc", "--dev", "/dev",
      "--size", std::to_string(64u << 20), "--tmpfs", "/tmp",
      writable_work_dir ? "--bind" : "--ro-bind", work_dir, "/sandbox",
      "--chdir", "/sandbox", "--clearenv",
      "--setenv", "PATH", "/usr/bin:/bin", "--setenv", "HOME", "/tmp", "--setenv", "LANG", "C.UTF-8",
  };
  // Merged-/usr systems link /bin, /lib, ... into /usr; older ones have real directories.
  for (const char* top : {"/bin", "/lib", "/lib64", "/sbin", "/lib32"}) {
    struct stat info;
    if (lstat(top, &info) != 0) continue;
    if (S_ISLNK(info.st_mode)) {
      char target[256];
      const ssize_t size = readlink(top, target, sizeof target - 1);
      if (size <= 0) continue;
      args.insert(args.end(), {"--symlink", std::string(target, static_cast<std::size_t>(size)), top});
    } else if (S_ISDIR(info.st_mode)) {
      args.insert(args.end(), {"--ro-bind", top, top});
    }
  }
  args.insert(args.end(), {"--remount-ro", "/", "--"});
  args.insert(args.end(), command.begin(), command.end());
  return args;
}

void set_limit(int resource, rlim_t value) {
  struct rlimit limit = {value, value};
  setrlimit(resource, &limit);
}

// In the forked child: only async-signal-safe calls until exec (the host is multi-threaded).
[[noreturn]] void exec_child(char* const* argv, int stdin_fd, int stdout_fd, int stderr_fd, const ProcessLimits& limits,
                             int uid, int process_limit) {
  setsid();  // own process group: the parent kills it as a whole
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  dup2(stdin_fd, 0);
  dup2(stdout_fd, 1);
  dup2(stderr_fd, 2);
  for (int fd = 3; fd < 1024; ++fd) close(fd);
  const auto cpu_seconds = static_cast<rlim_t>(std::ceil(limits.wall_seconds)) + 1;
  set_limit(RLIMIT_CPU, cpu_seconds);
  set_limit(RLIMIT_AS, limits.memory_bytes);
  set_limit(RLIMIT_FSIZE, limits.file_bytes);
  set_limit(RLIMIT_NOFILE, kOpenFiles);
  set_limit(RLIMIT_CORE, 0);
  set_limit(RLIMIT_NPROC, static_cast<rlim_t>(process_limit));
  if (uid >= 0 && (setgroups(0, nullptr) != 0 || setgid(uid) != 0 || setuid(uid) != 0)) _exit(126);
  char* empty_environment[] = {nullptr};
  execve(argv[0], argv, empty_environment);
  _exit(127);
}

}  // namespace

bool sandbox_available() { return access(kBubblewrap, X_OK) == 0; }

ProcessRun run_in_sandbox(const std::vector<std::string>& command, const std::string& input,
                          const std::string& work_dir, bool writable_work_dir, const ProcessLimits& limits) {
  if (!sandbox_available()) {
    throw std::runtime_error("run_program: bubblewrap not found at /usr/bin/bwrap (apt-get install bubblewrap)");
  }
  const int uid = geteuid() == 0 ? kFirstSandboxUid + next_uid_slot++ % kSandboxUids : -1;
  const int process_limit = uid >= 0 ? limits.processes : tasks_of_uid(getuid()) + limits.processes;
  if (uid >= 0 && chown(work_dir.c_str(), static_cast<uid_t>(uid), static_cast<gid_t>(uid)) != 0) {
    throw std::runtime_error("run_program: cannot hand the work directory to the sandbox user");
  }
  // Everything the child needs is built before fork.
  const std::vector<std::string> args = bubblewrap_arguments(command, work_dir, writable_work_dir);
  std::vector<char*> argv;
  for (const std::string& arg : args) argv.push_back(const_cast<char*>(arg.c_str()));
  argv.push_back(nullptr);

  int in[2], out[2], err[2];
  if (pipe2(in, O_CLOEXEC) != 0) throw std::runtime_error("run_program: pipe failed");
  if (pipe2(out, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0) {
    close(in[0]);
    close(in[1]);
    throw std::runtime_error("run_program: pipe failed");
  }
  const pid_t pid = fork();
  if (pid < 0) {
    for (int fd : {in[0], in[1], out[0], out[1], err[0], err[1]}) close(fd);
    throw std::runtime_error(std::string("run_program: fork failed: ") + std::strerror(errno));
  }
  if (pid == 0) exec_child(argv.data(), in[0], out[1], err[1], limits, uid, process_limit);
  close(in[0]);
  close(out[1]);
  close(err[1]);
  for (int fd : {in[1], out[0], err[0]}) fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);

  ProcessRun run;
  const auto deadline = std::chrono::steady_clock::now() +
                        std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                            std::chrono::duration<double>(limits.wall_seconds));
  std::size_t written = 0;
  int stdin_fd = in[1];
  if (input.empty()) {
    close(stdin_fd);
    stdin_fd = -1;
  }
  bool stdout_open = true, stderr_open = true, killed = false;
  char buffer[65536];
  while (stdout_open || stderr_open) {
    const auto now = std::chrono::steady_clock::now();
    if (now >= deadline) {
      run.timed_out = true;
      break;
    }
    struct pollfd fds[3];
    int count = 0;
    if (stdout_open) fds[count++] = {out[0], POLLIN, 0};
    if (stderr_open) fds[count++] = {err[0], POLLIN, 0};
    if (stdin_fd >= 0) fds[count++] = {stdin_fd, POLLOUT, 0};
    const auto wait_ms = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now).count() + 1;
    if (poll(fds, static_cast<nfds_t>(count), static_cast<int>(wait_ms)) < 0 && errno != EINTR) break;
    for (int i = 0; i < count; ++i) {
      if (fds[i].revents == 0) continue;
      if (fds[i].fd == stdin_fd) {
        const ssize_t n = write(stdin_fd, input.data() + written, input.size() - written);
        if (n > 0) written += static_cast<std::size_t>(n);
        if (n < 0 && errno != EAGAIN) written = input.size();  // the program closed stdin
        if (written >= input.size()) {
          close(stdin_fd);
          stdin_fd = -1;
        }
        continue;
      }
      const ssize_t n = read(fds[i].fd, buffer, sizeof buffer);
      if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
        (fds[i].fd == out[0] ? stdout_open : stderr_open) = false;
        continue;
      }
      if (n < 0) continue;
      if (fds[i].fd == out[0]) {
        run.stdout_text.append(buffer, static_cast<std::size_t>(n));
        if (run.stdout_text.size() > limits.output_bytes) {
          run.stdout_text.resize(limits.output_bytes);
          run.output_capped = true;
        }
      } else if (run.stderr_text.size() < kStderrBytes) {
        run.stderr_text.append(buffer, std::min(static_cast<std::size_t>(n), kStderrBytes - run.stderr_text.size()));
      }
    }
    if (run.output_capped) break;
  }
  if (run.timed_out || run.output_capped) {
    // bwrap and everything in the group; the sandboxed processes die with bwrap (pid namespace).
    kill(-pid, SIGKILL);
    killed = true;
  }
  if (stdin_fd >= 0) close(stdin_fd);
  close(out[0]);
  close(err[0]);
  // The program may close its output and keep running: the deadline still holds.
  int status = 0;
  while (!killed) {
    const pid_t done = waitpid(pid, &status, WNOHANG);
    if (done == pid || (done < 0 && errno != EINTR)) break;
    if (std::chrono::steady_clock::now() >= deadline) {
      run.timed_out = true;
      kill(-pid, SIGKILL);
      killed = true;
      break;
    }
    usleep(2000);
  }
  if (killed) {
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
  }
  if (WIFEXITED(status)) run.exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) run.signal = WTERMSIG(status);
  if (killed) run.exit_code = -1;
  return run;
}

}  // namespace grpo::rewards
