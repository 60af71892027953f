// The --nproc launcher: real child processes (/bin/sh), their environment, labelled output, and a
// failing rank stopping the others.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "rl/distributed/distributed_launch.h"

using namespace grpo;
namespace fs = std::filesystem;

namespace {

struct TempDir {
  fs::path path = fs::temp_directory_path() / ("grpo-launch-" + std::to_string(getpid()));
  TempDir() { fs::create_directories(path); }
  ~TempDir() { fs::remove_all(path); }
};

std::string read(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// Runs f with this process's stdout and stderr going to files; returns what was written to each.
template <class F>
std::pair<std::string, std::string> captured(const fs::path& dir, F f) {
  fflush(stdout);
  fflush(stderr);
  const int saved_out = dup(1), saved_err = dup(2);
  const int out = open((dir / "stdout").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  const int err = open((dir / "stderr").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  dup2(out, 1);
  dup2(err, 2);
  auto restore = [&] {
    fflush(stdout);
    fflush(stderr);
    dup2(saved_out, 1);
    dup2(saved_err, 2);
    close(out), close(err), close(saved_out), close(saved_err);
  };
  try {
    f();
  } catch (...) {
    restore();
    throw;
  }
  restore();
  return {read(dir / "stdout"), read(dir / "stderr")};
}

}  // namespace

TEST_CASE("launcher: each rank gets torchrun's variables and its output is labelled") {
  TempDir dir;
  const std::string script = "echo \"$RANK $LOCAL_RANK $WORLD_SIZE $LOCAL_WORLD_SIZE $MASTER_ADDR $MASTER_PORT\" > " +
                             (dir.path / "env.").string() + "$RANK; echo out $RANK; echo err $RANK >&2; printf 'no newline'";
  auto [out, err] = captured(dir.path, [&] { run_local_ranks({"/bin/sh", "-c", script}, {3}); });
  std::string ports;
  for (int r = 0; r < 3; ++r) {
    std::istringstream env(read(dir.path / ("env." + std::to_string(r))));
    std::string rank, local, world, local_world, addr, port;
    env >> rank >> local >> world >> local_world >> addr >> port;
    CHECK(rank == std::to_string(r));
    CHECK(local == std::to_string(r));
    CHECK(world == "3");
    CHECK(local_world == "3");
    CHECK(addr == "127.0.0.1");
    CHECK(std::stoi(port) > 0);
    if (r == 0) ports = port;
    CHECK(port == ports);  // one rendezvous port for all
    CHECK(out.find("[rank " + std::to_string(r) + "] out " + std::to_string(r) + "\n") != std::string::npos);
    CHECK(out.find("[rank " + std::to_string(r) + "] no newline\n") != std::string::npos);  // flushed at exit
    CHECK(err.find("[rank " + std::to_string(r) + "] err " + std::to_string(r) + "\n") != std::string::npos);
  }
}

TEST_CASE("launcher: a rank that fails stops the others and is named") {
  TempDir dir;
  // Rank 1 fails at once; rank 0 would write its file after 30 s unless stopped.
  const std::string script = "if [ $RANK = 1 ]; then exit 3; fi; sleep 30; touch " + (dir.path / "rank0-finished").string();
  std::string error;
  captured(dir.path, [&] {
    try {
      run_local_ranks({"/bin/sh", "-c", script}, {2});
    } catch (const std::runtime_error& e) {
      error = e.what();
    }
  });
  CHECK(error == "rank 1 of 2 exited with status 3; stopped the other ranks");
  CHECK_FALSE(fs::exists(dir.path / "rank0-finished"));
}

TEST_CASE("launcher: a rank killed by a signal is named with the signal") {
  TempDir dir;
  std::string error;
  captured(dir.path, [&] {
    try {
      run_local_ranks({"/bin/sh", "-c", "if [ $RANK = 0 ]; then kill -9 $$; fi; sleep 30"}, {2});
    } catch (const std::runtime_error& e) {
      error = e.what();
    }
  });
  CHECK(error.find("rank 0 of 2 was killed by signal 9") == 0);
}

TEST_CASE("launcher: bad arguments are errors") {
  CHECK_THROWS_AS(run_local_ranks({}, {2}), std::invalid_argument);
  CHECK_THROWS_AS(run_local_ranks({"/bin/true"}, {0}), std::invalid_argument);
}
