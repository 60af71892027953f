// grpo init --config CONFIG.json --out DIR [--seed N] [--dtype f32|bf16] [--max-shard-mb M]: a randomly initialised
// checkpoint directory, loadable here and in transformers.
#include <CLI/CLI.hpp>
#include <fmt/core.h>

#include "policy/checkpoint.h"
#include "policy/model_size.h"
#include "rl/cli/commands.h"

namespace grpo::cli {

void add_init_command(CLI::App& app) {
  struct Options {
    std::string config, out, dtype = "f32";
    uint64_t seed = 0;
    double max_shard_mb = 5 * 1024;
  };
  auto opt = std::make_shared<Options>();
  CLI::App* cmd = app.add_subcommand("init", "Write a randomly initialised checkpoint for a config.json");
  cmd->add_option("--config", opt->config, "Hugging Face config.json (deepseek_v3, deepseek_v2, qwen2, llama)")->required();
  cmd->add_option("--out", opt->out, "Output checkpoint directory")->required();
  cmd->add_option("--seed", opt->seed, "Random seed for the initial weights");
  cmd->add_option("--dtype", opt->dtype, "Weight dtype on disk")->check(CLI::IsMember({"f32", "bf16"}));
  cmd->add_option("--max-shard-mb", opt->max_shard_mb,
                  "Above this many MB the weights go to shards with model.safetensors.index.json (as transformers' max_shard_size)")
      ->check(CLI::PositiveNumber);
  cmd->callback([opt] {
    ModelConfig config = load_model_config(opt->config);
    torch::manual_seed(opt->seed);
    CausalLM model(config);
    save_checkpoint(model, opt->out,
                    {opt->dtype == "bf16" ? DType::BF16 : DType::F32, static_cast<int64_t>(opt->max_shard_mb * (1 << 20))});
    fmt::print("wrote {} ({} model, {:.2f}M parameters, seed {})\n", opt->out, config.model_type,
               count_parameters(config).total / 1e6, opt->seed);
  });
}

}  // namespace grpo::cli
