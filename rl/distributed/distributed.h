#pragma once
// Distributed: the data-parallel process group of a training run, over LibTorch's c10d (Gloo on CPU).
//
// Ranks meet through c10d's TCPStore at MASTER_ADDR:MASTER_PORT, the rendezvous torchrun, Slurm and
// MPI launches can all provide (docs/distributed.md). Every rank runs the same program; the collectives
// below must be called by all ranks in the same order with the same shapes, or they fail at the timeout.
//
// A world of one process needs no c10d at all: every collective is then the identity. c10d and Gloo
// headers stay inside distributed.cpp (they cost seconds of compile time per including file).
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace at { class Tensor; }

namespace grpo {

struct DistributedOptions {
  int rank = 0;
  int world_size = 1;
  int local_rank = 0;                // rank on this node (device selection on GPU machines)
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;
  // A rank that dies or stops answering makes every collective of the others fail after this long,
  // with an error naming the operation, instead of hanging the run.
  std::chrono::milliseconds timeout = std::chrono::minutes(5);
  // Gradients are flattened into buffers of about this size, one all-reduce each (DDP's default).
  int64_t bucket_bytes = 25 << 20;
  // Also open an NCCL group: collectives on CUDA tensors (gradients of a model on the GPU) then run
  // over it, those on CPU tensors (counts, metrics, flags) over Gloo. Needs a build against a CUDA
  // LibTorch (GRPO_WITH_NCCL); grpo run sets it when models are placed on CUDA.
  bool nccl = false;
};

// Reads the launcher's environment: torchrun's RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT;
// where RANK/WORLD_SIZE are unset, Slurm's SLURM_PROCID/SLURM_NTASKS/SLURM_LOCALID or Open MPI's
// OMPI_COMM_WORLD_RANK/_SIZE/_LOCAL_RANK. No variables at all means a world of one. Throws
// std::invalid_argument naming the variable when one is malformed, out of range, or missing (a world
// larger than one needs MASTER_ADDR and MASTER_PORT).
DistributedOptions distributed_options_from_environment();

enum class Reduction { Sum, Min, Max };

class Distributed {
 public:
  // Joins the process group (world_size > 1: TCPStore at master_addr:master_port, served by rank 0,
  // then a Gloo group). Throws std::runtime_error when not every rank arrives within the timeout.
  explicit Distributed(const DistributedOptions& options = {});
  ~Distributed();
  Distributed(const Distributed&) = delete;
  Distributed& operator=(const Distributed&) = delete;

  int rank() const { return options_.rank; }
  int world_size() const { return options_.world_size; }
  int local_rank() const { return options_.local_rank; }
  // Rank 0 writes metrics, samples and checkpoints; the others compute only.
  bool is_main() const { return options_.rank == 0; }
  const DistributedOptions& options() const { return options_; }

  // Sums the gradients of `parameters` over the ranks, in place, in buckets of about bucket_bytes.
  // A parameter without a gradient on some ranks gets the others' sum; one without a gradient on every
  // rank keeps none (as in a single process, so AdamW skips it). `ok` is this rank's verdict on its own
  // backward (e.g. a finite loss); returns true only when every rank passed ok = true.
  bool all_reduce_gradients(const std::vector<at::Tensor>& parameters, bool ok = true);
  // Reduces float tensors of any shape in place (each over the ranks, element-wise).
  void all_reduce(const std::vector<at::Tensor>& tensors, Reduction op = Reduction::Sum);
  // Reduces doubles (metrics, token counts) in place, element-wise over the ranks.
  void all_reduce(std::vector<double>& values, Reduction op = Reduction::Sum);
  double sum(double value);
  // Every rank's values concatenated in rank order (lengths may differ between ranks).
  std::vector<double> all_gather(const std::vector<double>& values);
  // Every rank's string, indexed by rank.
  std::vector<std::string> all_gather(const std::string& text);
  // Overwrites `tensors` on every rank with rank 0's (parameters at the start of training).
  void broadcast_from_main(const std::vector<at::Tensor>& tensors);
  void barrier();

  struct Group;  // the c10d objects, defined in distributed.cpp

 private:
  // Every rank's part size of a gather, and where this rank's part goes (one all-reduce).
  struct GatherLayout;
  GatherLayout gather_layout(size_t size);
  DistributedOptions options_;
  std::unique_ptr<Group> group_;
};

}  // namespace grpo
