#pragma once
// Each subcommand of `grpo` lives in its own cli/<name>_command.cpp and registers itself here.
namespace CLI { class App; }

namespace grpo::cli {

void add_init_command(CLI::App& app);
void add_inspect_command(CLI::App& app);
void add_logprobs_command(CLI::App& app);
void add_sample_command(CLI::App& app);
void add_run_command(CLI::App& app);
void add_tokenize_command(CLI::App& app);
void add_rewards_command(CLI::App& app);
void add_report_command(CLI::App& app);
void add_serve_command(CLI::App& app);

}  // namespace grpo::cli
