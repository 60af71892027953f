#include "rl/distributed/distributed_launch.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fmt/core.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <stdexcept>
#include <thread>

extern char** environ;

namespace grpo {
namespace {

// A TCP port on loopback that was free a moment ago (the kernel's pick for port 0); rank 0's TCPStore
// binds it right after, the same small race torchrun's standalone mode accepts.
int free_loopback_port() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) throw std::runtime_error(fmt::format("--nproc: cannot open a socket: {}", std::strerror(errno)));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  const bool ok = bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
                  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0;
  close(fd);
  if (!ok) throw std::runtime_error(fmt::format("--nproc: no free port on 127.0.0.1: {}", std::strerror(errno)));
  return ntohs(addr.sin_port);
}

// One rank's process and the pipes its output arrives on.
struct Rank {
  pid_t pid = -1;
  int out = -1, err = -1;          // read ends; -1 once closed
  std::string out_tail, err_tail;  // a line not yet complete
  bool exited = false;
  int status = 0;
};

// Writes the complete lines of `text` (appended to `tail`) to `stream`, each prefixed with the rank.
void forward_lines(std::string& tail, const char* data, size_t size, int rank, FILE* stream, bool flush_all) {
  tail.append(data, size);
  size_t start = 0, newline;
  while ((newline = tail.find('\n', start)) != std::string::npos) {
    fmt::print(stream, "[rank {}] {}\n", rank, std::string_view(tail).substr(start, newline - start));
    start = newline + 1;
  }
  tail.erase(0, start);
  if (flush_all && !tail.empty()) {
    fmt::print(stream, "[rank {}] {}\n", rank, tail);
    tail.clear();
  }
  std::fflush(stream);
}

std::string describe(int status) {
  if (WIFEXITED(status)) return fmt::format("exited with status {}", WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return fmt::format("was killed by signal {} ({})", WTERMSIG(status), strsignal(WTERMSIG(status)));
  return "stopped";
}

volatile sig_atomic_t g_stop_signal = 0;
void on_stop_signal(int signal) { g_stop_signal = signal; }

}  // namespace

void run_local_ranks(const std::vector<std::string>& argv, const LocalLaunchOptions& options) {
  if (argv.empty()) throw std::invalid_argument("--nproc: no command to run");
  if (options.nproc < 1) throw std::invalid_argument(fmt::format("--nproc {}: must be at least 1", options.nproc));
  const int port = free_loopback_port();
  const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
  const std::string threads = std::to_string(std::max(1u, cores / static_cast<unsigned>(options.nproc)));

  // The environments and argument vectors are built before fork: the child only calls exec.
  std::vector<std::vector<std::string>> environments(options.nproc);
  for (int r = 0; r < options.nproc; ++r) {
    std::map<std::string, std::string> vars = {{"RANK", std::to_string(r)},           {"LOCAL_RANK", std::to_string(r)},
                                               {"WORLD_SIZE", std::to_string(options.nproc)},
                                               {"LOCAL_WORLD_SIZE", std::to_string(options.nproc)},
                                               {"MASTER_ADDR", "127.0.0.1"},          {"MASTER_PORT", std::to_string(port)}};
    if (!std::getenv("OMP_NUM_THREADS")) vars["OMP_NUM_THREADS"] = threads;
    for (char** e = environ; *e; ++e) {
      std::string entry = *e;
      if (!vars.count(entry.substr(0, entry.find('=')))) environments[r].push_back(entry);
    }
    for (const auto& [k, v] : vars) environments[r].push_back(k + "=" + v);
  }
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);

  struct sigaction action {}, old_int {}, old_term {};
  action.sa_handler = on_stop_signal;
  sigemptyset(&action.sa_mask);
  sigaction(SIGINT, &action, &old_int);
  sigaction(SIGTERM, &action, &old_term);
  g_stop_signal = 0;

  std::vector<Rank> ranks(options.nproc);
  for (int r = 0; r < options.nproc; ++r) {
    int out[2], err[2];
    if (pipe2(out, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0)
      throw std::runtime_error(fmt::format("--nproc: pipe: {}", std::strerror(errno)));
    std::vector<char*> envp;
    for (std::string& e : environments[r]) envp.push_back(e.data());
    envp.push_back(nullptr);
    const pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) throw std::runtime_error(fmt::format("--nproc: fork: {}", std::strerror(errno)));
    if (pid == 0) {
      // A rank must not outlive its launcher (killed launcher, no orphans holding the port).
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (getppid() != parent) _exit(127);
      dup2(out[1], 1);
      dup2(err[1], 2);
      execve(args[0], args.data(), envp.data());
      _exit(127);
    }
    close(out[1]);
    close(err[1]);
    ranks[r].pid = pid;
    ranks[r].out = out[0];
    ranks[r].err = err[0];
  }

  int first_failure = -1;
  bool stopping = false;
  auto stop_time = std::chrono::steady_clock::now();
  auto stop_others = [&] {
    if (stopping) return;
    stopping = true;
    stop_time = std::chrono::steady_clock::now();
    for (Rank& rank : ranks)
      if (!rank.exited) kill(rank.pid, SIGTERM);
  };
  auto open_pipes = [&] {
    for (const Rank& rank : ranks)
      if (rank.out >= 0 || rank.err >= 0) return true;
    return false;
  };
  auto running = [&] {
    for (const Rank& rank : ranks)
      if (!rank.exited) return true;
    return false;
  };
  char buffer[65536];
  while (running() || open_pipes()) {
    std::vector<pollfd> fds;
    std::vector<std::pair<int, bool>> owners;  // rank, is stdout
    for (int r = 0; r < options.nproc; ++r) {
      if (ranks[r].out >= 0) fds.push_back({ranks[r].out, POLLIN, 0}), owners.push_back({r, true});
      if (ranks[r].err >= 0) fds.push_back({ranks[r].err, POLLIN, 0}), owners.push_back({r, false});
    }
    if (!fds.empty()) poll(fds.data(), fds.size(), 100);
    else std::this_thread::sleep_for(std::chrono::milliseconds(50));
    for (size_t i = 0; i < fds.size(); ++i) {
      if (!(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      auto [r, is_out] = owners[i];
      int& fd = is_out ? ranks[r].out : ranks[r].err;
      ssize_t n = read(fd, buffer, sizeof(buffer));
      if (n > 0) {
        forward_lines(is_out ? ranks[r].out_tail : ranks[r].err_tail, buffer, static_cast<size_t>(n), r, is_out ? stdout : stderr,
                      false);
      } else if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
        forward_lines(is_out ? ranks[r].out_tail : ranks[r].err_tail, "", 0, r, is_out ? stdout : stderr, true);
        close(fd);
        fd = -1;
      }
    }
    // Reap in the order the ranks end, so the first failure named is the cause, not a consequence.
    int status = 0;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
      for (int r = 0; r < options.nproc; ++r) {
        if (ranks[r].pid != pid) continue;
        ranks[r].exited = true;
        ranks[r].status = status;
        const bool failed = !(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        if (failed && first_failure < 0 && !stopping) {
          first_failure = r;
          stop_others();
        }
      }
    }
    if (g_stop_signal && !stopping) stop_others();
    if (stopping && running() &&
        std::chrono::duration<double>(std::chrono::steady_clock::now() - stop_time).count() > options.stop_grace_seconds)
      for (Rank& rank : ranks)
        if (!rank.exited) kill(rank.pid, SIGKILL);
  }
  sigaction(SIGINT, &old_int, nullptr);
  sigaction(SIGTERM, &old_term, nullptr);
  if (first_failure >= 0)
    throw std::runtime_error(fmt::format("rank {} of {} {}; stopped the other ranks", first_failure, options.nproc,
                                         describe(ranks[first_failure].status)));
  if (g_stop_signal)
    throw std::runtime_error(fmt::format("interrupted by signal {}; stopped all {} ranks", static_cast<int>(g_stop_signal), options.nproc));
}

}  // namespace grpo
