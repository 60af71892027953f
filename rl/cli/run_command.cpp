// grpo run EXPERIMENT.lua [--out RUN_DIR] [--set stage.key=value ...]: runs an experiment script.
#include <CLI/CLI.hpp>
#include <fmt/core.h>

#include <filesystem>
#include <stdexcept>

#include "rl/cli/commands.h"
#include "rl/experiment.h"

namespace grpo::cli {

void add_run_command(CLI::App& app) {
  struct Options {
    std::string script, out;
    std::vector<std::string> sets;
  };
  auto opt = std::make_shared<Options>();
  CLI::App* cmd = app.add_subcommand("run", "Run an experiment script (Lua)");
  cmd->add_option("script", opt->script, "Experiment script")->required()->check(CLI::ExistingFile);
  cmd->add_option("--out", opt->out, "Run directory (default: runs/<script name>)");
  cmd->add_option("--set", opt->sets, "Override a stage option, e.g. --set train.lr=1e-6 (repeatable)");
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
    run_experiment(o);
  });
}

}  // namespace grpo::cli
