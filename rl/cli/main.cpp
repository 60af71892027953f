// grpo: the command-line entry point. Errors a user can cause are printed as one line, no stack trace.
#include <CLI/CLI.hpp>
#include <fmt/core.h>

#include <exception>

#include "rl/cli/commands.h"

int main(int argc, char** argv) {
  CLI::App app{"grpo: reinforcement-learning post-training of language models with GRPO"};
  app.require_subcommand(1);
  grpo::cli::add_init_command(app);
  grpo::cli::add_inspect_command(app);
  grpo::cli::add_logprobs_command(app);
  grpo::cli::add_sample_command(app);
  grpo::cli::add_run_command(app);
  grpo::cli::add_tokenize_command(app);
  grpo::cli::add_rewards_command(app);
  grpo::cli::add_report_command(app);
  grpo::cli::add_serve_command(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const std::exception& e) {
    fmt::print(stderr, "grpo: error: {}\n", e.what());
    return 1;
  }
  return 0;
}
