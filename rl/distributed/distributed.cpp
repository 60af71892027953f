#include "rl/distributed/distributed.h"

#include <ATen/ATen.h>
#include <fmt/core.h>

#include <cstdlib>
#include <optional>
#include <stdexcept>

#include "rl/distributed/distributed_c10d.h"

namespace grpo {
namespace {

using c10d_compat::GlooGroup;

std::optional<std::string> env(const char* name) {
  const char* v = std::getenv(name);
  if (!v || !*v) return std::nullopt;
  return std::string(v);
}

int parse_int(const std::string& text, const char* name, int low, int high) {
  size_t used = 0;
  long value = 0;
  try {
    value = std::stol(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used != text.size() || value < low || value > high)
    throw std::invalid_argument(fmt::format("distributed: {}={} is not an integer in [{}, {}]", name, text, low, high));
  return static_cast<int>(value);
}

// The first variable of `names` that is set, with its name (for error messages).
std::optional<std::pair<std::string, std::string>> first_set(std::initializer_list<const char*> names) {
  for (const char* n : names)
    if (auto v = env(n)) return std::make_pair(std::string(n), *v);
  return std::nullopt;
}

// c10d errors carry a C++ backtrace; the user needs the first line.
std::string short_message(const std::exception& e) {
  const auto* c10_error = dynamic_cast<const c10::Error*>(&e);
  std::string text = c10_error ? c10_error->what_without_backtrace() : e.what();
  size_t newline = text.find('\n');
  return newline == std::string::npos ? text : text.substr(0, newline);
}

::c10d::ReduceOp to_c10d(Reduction op) {
  switch (op) {
    case Reduction::Sum: return ::c10d::ReduceOp::SUM;
    case Reduction::Min: return ::c10d::ReduceOp::MIN;
    case Reduction::Max: return ::c10d::ReduceOp::MAX;
  }
  throw std::logic_error("distributed: unknown reduction");
}

}  // namespace

DistributedOptions distributed_options_from_environment() {
  DistributedOptions o;
  // torchrun first, then Slurm (srun), then Open MPI (mpirun): each sets a rank and a world size.
  auto rank = first_set({"RANK", "SLURM_PROCID", "OMPI_COMM_WORLD_RANK"});
  auto size = first_set({"WORLD_SIZE", "SLURM_NTASKS", "OMPI_COMM_WORLD_SIZE"});
  auto local = first_set({"LOCAL_RANK", "SLURM_LOCALID", "OMPI_COMM_WORLD_LOCAL_RANK"});
  if (!size) {
    if (rank && rank->first == "RANK")
      throw std::invalid_argument("distributed: RANK is set but WORLD_SIZE is not; set both (or neither for one process)");
    return o;
  }
  o.world_size = parse_int(size->second, size->first.c_str(), 1, 1 << 20);
  if (!rank) throw std::invalid_argument(fmt::format("distributed: {} is set but no rank variable (RANK)", size->first));
  o.rank = parse_int(rank->second, rank->first.c_str(), 0, o.world_size - 1);
  if (local) o.local_rank = parse_int(local->second, local->first.c_str(), 0, 1 << 20);
  if (o.world_size == 1) return o;
  auto addr = env("MASTER_ADDR");
  auto port = env("MASTER_PORT");
  if (!addr || !port)
    throw std::invalid_argument(fmt::format("distributed: world size {} (from {}) needs MASTER_ADDR and MASTER_PORT: the "
                                            "host of rank 0 and a free TCP port there",
                                            o.world_size, size->first));
  o.master_addr = *addr;
  o.master_port = parse_int(*port, "MASTER_PORT", 1, 65535);
  return o;
}

struct Distributed::Group {
  c10::intrusive_ptr<::c10d::Store> store;
  c10::intrusive_ptr<GlooGroup> gloo;
#ifdef GRPO_WITH_NCCL
  c10::intrusive_ptr<c10d_compat::NcclGroup> nccl;  // when DistributedOptions::nccl
#endif
};

namespace {

// A collective on `t` goes to NCCL when t is on a GPU and there is an NCCL group, to Gloo otherwise.
template <class Launch>
c10d_compat::WorkPtr on_group_for(Distributed::Group& group, const at::Tensor& t, Launch launch) {
#ifdef GRPO_WITH_NCCL
  if (t.is_cuda() && group.nccl) return launch(*group.nccl);
#endif
  return launch(*group.gloo);
}

}  // namespace

Distributed::Distributed(const DistributedOptions& options) : options_(options) {
  if (options_.world_size < 1 || options_.rank < 0 || options_.rank >= options_.world_size)
    throw std::invalid_argument(fmt::format("distributed: rank {} is outside a world of {}", options_.rank, options_.world_size));
  if (options_.world_size == 1) return;
  group_ = std::make_unique<Group>();
  const double seconds = options_.timeout.count() / 1000.0;
  try {
    ::c10d::TCPStoreOptions store_options;
    store_options.port = static_cast<uint16_t>(options_.master_port);
    store_options.isServer = options_.rank == 0;
    store_options.numWorkers = static_cast<size_t>(options_.world_size);
    store_options.waitWorkers = true;
    store_options.timeout = options_.timeout;
    auto tcp = c10::make_intrusive<::c10d::TCPStore>(options_.master_addr, store_options);
    group_->store = c10::make_intrusive<::c10d::PrefixStore>("grpo", tcp);
  } catch (const std::exception& e) {
    throw std::runtime_error(fmt::format("distributed: rank {} of {} could not meet the others at {}:{} within {} s: {}",
                                         options_.rank, options_.world_size, options_.master_addr, options_.master_port,
                                         seconds, short_message(e)));
  }
  try {
    auto gloo_options = GlooGroup::Options::create(options_.timeout);
    // Gloo connects every pair of ranks directly: bind where the others can reach this host. On one
    // machine that is loopback; across machines GLOO_SOCKET_IFNAME names the interface (as in PyTorch).
    if (auto interface = env("GLOO_SOCKET_IFNAME")) {
      gloo_options->devices.push_back(GlooGroup::createDeviceForInterface(*interface));
    } else if (options_.master_addr == "127.0.0.1" || options_.master_addr == "localhost") {
      gloo_options->devices.push_back(GlooGroup::createDeviceForHostname("127.0.0.1"));
    } else {
      gloo_options->devices.push_back(GlooGroup::createDefaultDevice());
    }
    group_->gloo = c10::make_intrusive<GlooGroup>(group_->store, options_.rank, options_.world_size, gloo_options);
    if (options_.nccl) {
#ifdef GRPO_WITH_NCCL
      auto nccl_options = c10d_compat::NcclGroup::Options::create();
      nccl_options->timeout = options_.timeout;
      group_->nccl = c10::make_intrusive<c10d_compat::NcclGroup>(c10::make_intrusive<::c10d::PrefixStore>("nccl", group_->store),
                                                                 options_.rank, options_.world_size, nccl_options);
#else
      throw std::invalid_argument("an NCCL group was asked for, but this build has no NCCL (its LibTorch has no CUDA)");
#endif
    }
  } catch (const std::exception& e) {
    throw std::runtime_error(fmt::format("distributed: rank {} of {} could not connect to the other ranks within {} s: {}",
                                         options_.rank, options_.world_size, seconds, short_message(e)));
  }
}

Distributed::~Distributed() = default;

namespace {

// Runs one collective and waits for it; any failure becomes an error naming the operation and the
// likely cause, since a c10d message alone ("Connection closed by peer") does not say what to do.
template <class Launch>
void run_collective(const DistributedOptions& o, const char* what, Launch launch) {
  try {
    auto work = launch();
    work->wait(o.timeout);
  } catch (const std::exception& e) {
    throw std::runtime_error(fmt::format("distributed: {} failed on rank {} of {}: another rank exited, crashed or did not "
                                         "reach it within the {} s timeout ({})",
                                         what, o.rank, o.world_size, o.timeout.count() / 1000.0, short_message(e)));
  }
}

// Consecutive tensors of one dtype, about bucket_bytes together: one collective each.
std::vector<std::vector<at::Tensor>> buckets_of(const std::vector<at::Tensor>& tensors, int64_t bucket_bytes) {
  std::vector<std::vector<at::Tensor>> buckets;
  int64_t bytes = 0;
  for (const at::Tensor& t : tensors) {
    if (!t.defined()) throw std::invalid_argument("distributed: cannot reduce an undefined tensor");
    const int64_t size = t.numel() * static_cast<int64_t>(t.element_size());
    if (buckets.empty() || buckets.back().front().scalar_type() != t.scalar_type() || bytes + size > bucket_bytes) {
      buckets.emplace_back();
      bytes = 0;
    }
    buckets.back().push_back(t);
    bytes += size;
  }
  return buckets;
}

// Flattens a bucket into one buffer, applies `collective` to it, and copies the result back.
template <class Collective>
void on_flat_buffers(const std::vector<at::Tensor>& tensors, int64_t bucket_bytes, Collective collective) {
  at::NoGradGuard no_grad;  // parameters are leaves that require grad; the copies are not part of any graph
  for (const std::vector<at::Tensor>& bucket : buckets_of(tensors, bucket_bytes)) {
    if (bucket.size() == 1 && bucket[0].is_contiguous()) {
      at::Tensor t = bucket[0];
      collective(t);
      continue;
    }
    std::vector<at::Tensor> flat_parts;
    for (const at::Tensor& t : bucket) flat_parts.push_back(t.reshape({-1}));
    at::Tensor flat = at::cat(flat_parts);
    collective(flat);
    int64_t offset = 0;
    for (const at::Tensor& t : bucket) {
      t.copy_(flat.narrow(0, offset, t.numel()).view(t.sizes()));
      offset += t.numel();
    }
  }
}

}  // namespace

void Distributed::all_reduce(const std::vector<at::Tensor>& tensors, Reduction op) {
  if (!group_) return;
  ::c10d::AllreduceOptions ao;
  ao.reduceOp = to_c10d(op);
  on_flat_buffers(tensors, options_.bucket_bytes, [&](at::Tensor& flat) {
    std::vector<at::Tensor> one{flat};
    run_collective(options_, "all-reduce", [&] {
      return on_group_for(*group_, flat, [&](auto& group) { return group.allreduce(one, ao); });
    });
  });
}

bool Distributed::all_reduce_gradients(const std::vector<at::Tensor>& parameters, bool ok) {
  if (!group_) return ok;
  // One round of flags first: which parameters have a gradient on some rank, and whether any rank failed.
  std::vector<double> flags(parameters.size() + 1, 0.0);
  for (size_t i = 0; i < parameters.size(); ++i) flags[i] = parameters[i].grad().defined() ? 1.0 : 0.0;
  flags.back() = ok ? 0.0 : 1.0;
  all_reduce(flags, Reduction::Sum);
  std::vector<at::Tensor> gradients;
  for (size_t i = 0; i < parameters.size(); ++i) {
    if (flags[i] == 0) continue;
    at::Tensor p = parameters[i];
    if (!p.grad().defined()) p.mutable_grad() = at::zeros_like(p);
    gradients.push_back(p.grad());
  }
  all_reduce(gradients, Reduction::Sum);
  return flags.back() == 0;
}

void Distributed::all_reduce(std::vector<double>& values, Reduction op) {
  if (!group_ || values.empty()) return;
  at::Tensor t = at::tensor(values, at::kDouble);
  all_reduce(std::vector<at::Tensor>{t}, op);
  std::copy(t.data_ptr<double>(), t.data_ptr<double>() + t.numel(), values.begin());
}

double Distributed::sum(double value) {
  std::vector<double> v{value};
  all_reduce(v, Reduction::Sum);
  return v[0];
}

// Where each rank's part lies in a gather of parts of these sizes (in rank order).
struct Distributed::GatherLayout {
  std::vector<size_t> sizes;  // per rank
  size_t offset = 0;          // of this rank's part
  size_t total = 0;
};

Distributed::GatherLayout Distributed::gather_layout(size_t size) {
  std::vector<double> counts(options_.world_size, 0.0);
  counts[options_.rank] = static_cast<double>(size);
  all_reduce(counts, Reduction::Sum);
  GatherLayout layout;
  for (int r = 0; r < options_.world_size; ++r) {
    if (r == options_.rank) layout.offset = layout.total;
    layout.sizes.push_back(static_cast<size_t>(counts[r]));
    layout.total += layout.sizes.back();
  }
  return layout;
}

// Both gathers place each rank's data in its own slot of a zero buffer and sum: x + 0 is exact, and
// ranks may contribute different lengths (which Gloo's allgather does not allow).
std::vector<double> Distributed::all_gather(const std::vector<double>& values) {
  if (!group_) return values;
  const GatherLayout layout = gather_layout(values.size());
  std::vector<double> all(layout.total, 0.0);
  std::copy(values.begin(), values.end(), all.begin() + static_cast<std::ptrdiff_t>(layout.offset));
  all_reduce(all, Reduction::Sum);
  return all;
}

std::vector<std::string> Distributed::all_gather(const std::string& text) {
  if (!group_) return {text};
  const GatherLayout layout = gather_layout(text.size());
  at::Tensor bytes = at::zeros({static_cast<int64_t>(std::max<size_t>(layout.total, 1))}, at::kByte);
  std::copy(text.begin(), text.end(), bytes.data_ptr<uint8_t>() + layout.offset);
  all_reduce(std::vector<at::Tensor>{bytes}, Reduction::Sum);
  std::vector<std::string> out;
  const char* data = reinterpret_cast<const char*>(bytes.data_ptr<uint8_t>());
  size_t begin = 0;
  for (size_t size : layout.sizes) {
    out.emplace_back(data + begin, size);
    begin += size;
  }
  return out;
}

void Distributed::broadcast_from_main(const std::vector<at::Tensor>& tensors) {
  if (!group_) return;
  ::c10d::BroadcastOptions bo;
  bo.rootRank = 0;
  on_flat_buffers(tensors, options_.bucket_bytes, [&](at::Tensor& flat) {
    std::vector<at::Tensor> one{flat};
    run_collective(options_, "broadcast", [&] {
      return on_group_for(*group_, flat, [&](auto& group) { return group.broadcast(one, bo); });
    });
  });
}

void Distributed::barrier() {
  if (!group_) return;
  run_collective(options_, "barrier", [&] { return group_->gloo->barrier(); });
}

}  // namespace grpo
