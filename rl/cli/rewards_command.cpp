// grpo rewards --rules RULES.lua --in samples.jsonl [--out scored.jsonl] [--threads N]: scores every
// record with the reward rules and prints per-rule mean, min, max and failures, to debug rules before
// a training run.
#include <CLI/CLI.hpp>
#include <fmt/core.h>

#include <fstream>
#include <memory>
#include <stdexcept>

#include "rewards/score_jsonl.h"
#include "rl/cli/commands.h"

namespace grpo::cli {

void add_rewards_command(CLI::App& app) {
  struct Options {
    std::string rules, input, output;
    int threads = 2;
  };
  auto opt = std::make_shared<Options>();
  CLI::App* cmd = app.add_subcommand("rewards", "Score a JSONL file of completions with Lua reward rules");
  cmd->add_option("--rules", opt->rules, "Rules file: returns a rule function or a list of {name, weight, rule}")
      ->required();
  cmd->add_option("--in", opt->input, "Samples (JSONL): each record has \"completion\" plus its data fields")
      ->required();
  cmd->add_option("--out", opt->output, "Write each record with \"rewards\" and \"reward\" added (JSONL)");
  cmd->add_option("--threads", opt->threads, "Sandboxed Lua states scoring in parallel")->check(CLI::Range(1, 256));
  cmd->callback([opt] {
    rewards::ScorerPool pool(rewards::RuleSet::from_file(opt->rules), opt->threads);
    std::ofstream output;
    if (!opt->output.empty()) {
      output.open(opt->output, std::ios::binary);
      if (!output) throw std::runtime_error(opt->output + ": cannot open for writing");
    }
    const rewards::ScoreFileSummary summary =
        rewards::score_jsonl(pool, opt->input, opt->output.empty() ? nullptr : &output);
    if (!opt->output.empty() && !output) throw std::runtime_error(opt->output + ": write failed");
    fmt::print("{}", rewards::format_summary(summary, pool.rule_set()));
    if (!opt->output.empty()) fmt::print("wrote {}\n", opt->output);
  });
}

}  // namespace grpo::cli
