// grpo report RUN_DIR [--out DIR]: metric curves of a run as SVG files and one self-contained HTML page.
#include <CLI/CLI.hpp>
#include <fmt/core.h>

#include <filesystem>

#include "rl/cli/commands.h"
#include "rl/experiment/report.h"

namespace grpo::cli {

void add_report_command(CLI::App& app) {
  struct Options {
    std::string run_dir, out;
  };
  auto opt = std::make_shared<Options>();
  CLI::App* cmd = app.add_subcommand("report", "Draw a run's metric curves (SVG + one HTML page)");
  cmd->add_option("run_dir", opt->run_dir, "Run directory (metrics.jsonl in it or in its stage folders)")->required();
  cmd->add_option("--out", opt->out, "Output folder (default: RUN_DIR/report)");
  cmd->callback([opt] {
    const std::string out = opt->out.empty() ? (std::filesystem::path(opt->run_dir) / "report").string() : opt->out;
    ReportFiles files = write_report(opt->run_dir, out);
    fmt::print("{} charts -> {}\n", files.svgs.size(), files.html);
  });
}

}  // namespace grpo::cli
