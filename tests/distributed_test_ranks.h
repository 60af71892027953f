#pragma once
// Runs real ranks for the data-parallel tests: the test executable starts copies of itself with the
// torchrun variables set; a copy finds GRPO_TEST_RANK_SCENARIO in its environment while static objects
// are initialised, runs that scenario instead of the test suite, and exits. Each test file declares its
// scenarios with `const bool registered = test::rank_scenario("name", function);`.
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

namespace grpo::test {

// In a spawned rank whose scenario is `name`: runs it and exits (0, or 1 with the error on stderr).
// Elsewhere returns true and does nothing.
inline bool rank_scenario(const char* name, const std::function<void()>& scenario) {
  const char* wanted = std::getenv("GRPO_TEST_RANK_SCENARIO");
  if (!wanted || std::strcmp(wanted, name) != 0) return true;
  int code = 0;
  try {
    scenario();
  } catch (const std::exception& e) {
    std::cerr << "rank " << std::getenv("RANK") << ": " << e.what() << std::endl;
    code = 1;
  }
  std::cout.flush();
  std::_Exit(code);  // no doctest, no static destructors: the scenario is the whole process
}

// A TCP port that was free a moment ago on loopback (the kernel's pick for port 0).
inline int free_port() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  if (fd < 0 || bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0)
    throw std::runtime_error("free_port: no socket");
  close(fd);
  return ntohs(addr.sin_port);
}

struct RankOutcome {
  int exit_code = -1;   // -1 when killed by a signal
  bool killed_at_deadline = false;
  double seconds = 0;   // until it exited (or was killed)
  std::string output;   // stdout and stderr
};

// Starts `ranks` (each an entry of 0..world-1; a rank not listed never starts) of a world of `world`
// running `scenario`, with `env` added. Waits until every rank exited, or, with wait_for_rank >= 0,
// until that one did; ranks still running then, or at the deadline, are killed.
inline std::vector<RankOutcome> run_ranks(const std::string& scenario, int world, const std::vector<int>& ranks,
                                          const std::map<std::string, std::string>& env, double deadline_seconds,
                                          int wait_for_rank = -1) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / ("grpo-ranks-" + std::to_string(getpid()) + "-" + scenario);
  fs::create_directories(dir);
  const int port = free_port();
  std::vector<pid_t> pids;
  std::vector<RankOutcome> outcomes(ranks.size());
  const auto start = std::chrono::steady_clock::now();
  for (int rank : ranks) {
    std::map<std::string, std::string> vars = {{"GRPO_TEST_RANK_SCENARIO", scenario}, {"RANK", std::to_string(rank)},
                                               {"LOCAL_RANK", std::to_string(rank)}, {"WORLD_SIZE", std::to_string(world)},
                                               {"MASTER_ADDR", "127.0.0.1"}, {"MASTER_PORT", std::to_string(port)},
                                               {"OMP_NUM_THREADS", "1"}};
    for (const auto& [k, v] : env) vars[k] = v;
    std::vector<std::string> entries;
    for (char** e = environ; *e; ++e) {
      std::string entry = *e;
      if (!vars.count(entry.substr(0, entry.find('=')))) entries.push_back(entry);
    }
    for (const auto& [k, v] : vars) entries.push_back(k + "=" + v);
    std::vector<char*> envp;
    for (std::string& e : entries) envp.push_back(e.data());
    envp.push_back(nullptr);
    std::string exe = fs::read_symlink("/proc/self/exe").string();
    std::vector<char*> argv = {exe.data(), nullptr};
    const std::string log = (dir / ("rank" + std::to_string(rank) + ".log")).string();
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_adddup2(&actions, 1, 2);
    pid_t pid = 0;
    if (posix_spawn(&pid, exe.c_str(), &actions, nullptr, argv.data(), envp.data()) != 0)
      throw std::runtime_error("run_ranks: cannot start " + exe);
    posix_spawn_file_actions_destroy(&actions);
    pids.push_back(pid);
  }
  auto elapsed = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(); };
  std::vector<bool> done(ranks.size(), false);
  auto all_done = [&] {
    for (size_t i = 0; i < ranks.size(); ++i)
      if (!done[i] && (wait_for_rank < 0 || ranks[i] == wait_for_rank)) return false;
    return true;
  };
  while (!all_done() && elapsed() < deadline_seconds) {
    for (size_t i = 0; i < ranks.size(); ++i) {
      int status = 0;
      if (done[i] || waitpid(pids[i], &status, WNOHANG) != pids[i]) continue;
      done[i] = true;
      outcomes[i].exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
      outcomes[i].seconds = elapsed();
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  for (size_t i = 0; i < ranks.size(); ++i) {
    if (done[i]) continue;
    kill(pids[i], SIGKILL);
    waitpid(pids[i], nullptr, 0);
    outcomes[i].killed_at_deadline = wait_for_rank < 0 || ranks[i] == wait_for_rank;
    outcomes[i].seconds = elapsed();
  }
  for (size_t i = 0; i < ranks.size(); ++i) {
    std::ifstream in(dir / ("rank" + std::to_string(ranks[i]) + ".log"));
    std::stringstream text;
    text << in.rdbuf();
    outcomes[i].output = text.str();
  }
  fs::remove_all(dir);
  return outcomes;
}

}  // namespace grpo::test
