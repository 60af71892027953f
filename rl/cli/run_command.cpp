// grpo run EXPERIMENT.lua [--out RUN_DIR] [--set stage.key=value ...] [--check | --no-check] [--rerun-from STAGE] [--nproc N]
//          [--dist-timeout S] [--device auto|cpu|cuda|cuda:N] [--dtype auto|float32|bfloat16]:
// checks an experiment script as a whole (rl/experiment/check_run.h), then runs it, as one process, as one rank of a launcher's data-parallel run (torchrun,
// srun, mpirun: rl/distributed/distributed.h reads their variables), or as N local ranks it starts itself.
#include <CLI/CLI.hpp>
#include <fmt/core.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <stdexcept>

#include "rl/cli/commands.h"
#include "rl/distributed/distributed.h"
#include "rl/distributed/distributed_launch.h"
#include "rl/experiment/experiment.h"
#include "rl/experiment/stage_option_specs.h"

namespace grpo::cli {
namespace {

// This process's own command line without `--nproc N`: what each local rank runs.
std::vector<std::string> command_line_without_nproc() {
  std::ifstream in("/proc/self/cmdline", std::ios::binary);
  std::vector<std::string> args;
  for (std::string arg; std::getline(in, arg, '\0');) args.push_back(arg);
  std::vector<std::string> kept = {std::filesystem::read_symlink("/proc/self/exe").string()};
  for (size_t i = 1; i < args.size(); ++i) {
    if (args[i] == "--nproc") {
      ++i;  // and its value
    } else if (args[i].rfind("--nproc=", 0) != 0) {
      kept.push_back(args[i]);
    }
  }
  return kept;
}

}  // namespace

void add_run_command(CLI::App& app) {
  struct Options {
    std::string script, out;
    std::vector<std::string> sets;
    int nproc = 1;
    double timeout_seconds = 300;
    std::string device = "auto", dtype = "auto";
    bool check_only = false, no_check = false;
    std::string rerun_from;
    std::string save_dtype = "auto";
  };
  auto opt = std::make_shared<Options>();
  CLI::App* cmd = app.add_subcommand("run", "Run an experiment script (Lua)");
  cmd->add_option("script", opt->script, "Experiment script")->required()->check(CLI::ExistingFile);
  cmd->add_option("--out", opt->out, "Run directory (default: runs/<script name>)");
  cmd->add_option("--set", opt->sets, "Override a stage option, e.g. --set train.lr=1e-6 (repeatable)");
  auto* check = cmd->add_flag("--check", opt->check_only,
                               "Check every stage call (options, input files, data, prompts, rules tried on a record) "
                               "and stop: nothing is trained or written");
  cmd->add_flag("--no-check", opt->no_check, "Run without checking the whole script first")->excludes(check);
  cmd->add_option("--rerun-from", opt->rerun_from,
                  "Run this stage and the later ones again: a record number (stages/NN-name.json), a stage name, "
                  "or name:N; their records and checkpoints are set aside under RUN/stages/replaced-<time>/");
  cmd->add_option("--save-dtype", opt->save_dtype,
                  "Saved weights: auto (the dtype the model trains in), float32 or bfloat16")
      ->check(CLI::IsMember({"auto", "float32", "bfloat16"}));
  cmd->add_option("--nproc", opt->nproc, "Start N local ranks of this run (data parallel on one machine)")
      ->check(CLI::Range(1, 1024));
  cmd->add_option("--dist-timeout", opt->timeout_seconds,
                  "Seconds a rank waits for the others (rendezvous, each collective) before failing")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--device", opt->device, "auto (CUDA when available: the device LOCAL_RANK names), cpu, cuda or cuda:N");
  cmd->add_option("--dtype", opt->dtype, "Model weights: auto (bfloat16 on CUDA, float32 on the CPU), float32 or bfloat16");
  cmd->callback([opt] {
    ExperimentOptions o;
    o.script = opt->script;
    o.run_directory = opt->out.empty() ? "runs/" + std::filesystem::path(opt->script).stem().string() : opt->out;
    for (const std::string& s : opt->sets) {
      size_t eq = s.find('='), dot = s.find('.');
      if (eq == std::string::npos || dot == std::string::npos || dot > eq)
        throw std::invalid_argument(fmt::format("--set {}: expected stage.key=value, e.g. train.lr=1e-6", s));
      o.overrides[s.substr(0, eq)] = s.substr(eq + 1);
    }
    // Checked here too, so that a typo fails once, before any rank starts (run_experiment checks again).
    parse_overrides(o.overrides);
    o.rerun_from = opt->rerun_from;
    o.save_dtype = opt->save_dtype;
    o.check = opt->check_only ? ScriptCheck::only : opt->no_check ? ScriptCheck::skip : ScriptCheck::first;
    if (opt->check_only) {  // one process checks; nothing is launched or placed
      run_experiment(o);
      return;
    }
    DistributedOptions d = distributed_options_from_environment();
    if (opt->nproc > 1) {
      if (d.world_size > 1)
        throw std::invalid_argument(fmt::format("--nproc {}: this process is already rank {} of {} of a launched run; "
                                                "let the launcher start the ranks, or use --nproc alone",
                                                opt->nproc, d.rank, d.world_size));
      LocalLaunchOptions launch;
      launch.nproc = opt->nproc;
      run_local_ranks(command_line_without_nproc(), launch);
      return;
    }
    // The rank on this node picks the GPU, whichever launcher said it (torchrun, Slurm, MPI).
    o.placement = resolve_placement(opt->device, opt->dtype, d.local_rank);
    d.nccl = o.placement.device.is_cuda();
    d.timeout = std::chrono::milliseconds(static_cast<int64_t>(opt->timeout_seconds * 1000));
    Distributed distributed(d);
    if (distributed.world_size() > 1) o.distributed = &distributed;
    run_experiment(o);
  });
}

}  // namespace grpo::cli
