#pragma once
// The one place where c10d's version differences live; included by distributed.cpp only.
//
// LibTorch 1.13 (Debian): ProcessGroupGloo derives from c10d::ProcessGroup, its Options from
// ProcessGroup::Options. LibTorch 2.x: it derives from c10d::Backend (a ProcessGroup now dispatches to
// backends), Options from Backend::Options. The members used here (constructor, Options::create,
// devices, timeout, allreduce/broadcast/barrier returning a Work) are the same in both, so the code
// names the concrete Gloo class and never its base.
#include <torch/csrc/api/include/torch/version.h>

#ifndef USE_C10D_GLOO
#error "distributed.cpp needs USE_C10D_GLOO (set in rl/CMakeLists.txt): ProcessGroupGloo.hpp is empty without it"
#endif

#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

// NCCL: only in a build against a CUDA LibTorch (rl/CMakeLists.txt defines GRPO_WITH_NCCL and the
// USE_C10D_NCCL guard of the header then). ProcessGroupNCCL's constructor (store, rank, size, options)
// and Options::create() with a `timeout` member are the same in 1.13 and 2.x.
#ifdef GRPO_WITH_NCCL
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

namespace grpo::c10d_compat {

using GlooGroup = ::c10d::ProcessGroupGloo;
#ifdef GRPO_WITH_NCCL
using NcclGroup = ::c10d::ProcessGroupNCCL;
#endif
using WorkPtr = c10::intrusive_ptr<::c10d::Work>;

}  // namespace grpo::c10d_compat
