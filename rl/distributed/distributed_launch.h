#pragma once
// A single-node launcher: `grpo run x.lua --nproc N` starts N copies of a command as the ranks of one
// data-parallel run, as `torchrun --standalone --nproc-per-node N --no-python` would: RANK, LOCAL_RANK,
// WORLD_SIZE, LOCAL_WORLD_SIZE, MASTER_ADDR=127.0.0.1 and a free MASTER_PORT in each one's environment.
// Each output line is prefixed with its rank. A rank that fails stops the others: the run fails as a
// whole and says which rank failed first, instead of leaving ranks waiting on a dead peer.
#include <string>
#include <vector>

namespace grpo {

struct LocalLaunchOptions {
  int nproc = 2;
  // Seconds the other ranks get to exit after SIGTERM before SIGKILL.
  double stop_grace_seconds = 5;
};

// Runs argv[0] (a path) with arguments argv[1...] as nproc ranks and waits for all of them. Returns when
// every rank exited with status 0. Throws std::runtime_error naming the first rank that exited non-zero
// or was killed (and its status), after stopping the others; std::invalid_argument for nproc < 1 or
// an empty argv. OMP_NUM_THREADS defaults to the cores divided among the ranks (as torchrun sets it).
void run_local_ranks(const std::vector<std::string>& argv, const LocalLaunchOptions& options);

}  // namespace grpo
