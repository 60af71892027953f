// grpo inspect DIR: what a checkpoint is, computed from its config.json alone (no weights loaded).
#include <CLI/CLI.hpp>
#include <fmt/core.h>

#include <filesystem>

#include "policy/model_config.h"
#include "policy/model_size.h"
#include "rl/cli/commands.h"

namespace grpo::cli {
namespace {

std::string human(double n) {
  if (n >= 1e9) return fmt::format("{:.2f}B", n / 1e9);
  if (n >= 1e6) return fmt::format("{:.2f}M", n / 1e6);
  if (n >= 1e3) return fmt::format("{:.1f}K", n / 1e3);
  return fmt::format("{:.0f}", n);
}

void inspect(const std::string& path) {
  std::string config_path = std::filesystem::is_directory(path) ? path + "/config.json" : path;
  ModelConfig c = load_model_config(config_path);
  ParameterCounts p = count_parameters(c);
  fmt::print("model_type         {} ({} family)\n", c.model_type, to_string(c.family));
  fmt::print("layers             {} (hidden {}, vocab {}, {} embeddings)\n", c.num_hidden_layers, c.hidden_size,
             c.vocab_size, c.tie_word_embeddings ? "tied" : "untied");
  if (c.uses_mla()) {
    fmt::print("attention          MLA: {} heads, q_lora_rank {}, kv_lora_rank {}, qk {}+{} (nope+rope), v {}\n",
               c.num_attention_heads, c.mla.q_lora_rank, c.mla.kv_lora_rank, c.mla.qk_nope_head_dim,
               c.mla.qk_rope_head_dim, c.mla.v_head_dim);
  } else {
    fmt::print("attention          GQA: {} query heads, {} kv heads, head_dim {}{}\n", c.num_attention_heads,
               c.num_key_value_heads, c.head_dim, c.attention_bias ? ", qkv bias" : "");
  }
  if (c.has_moe()) {
    const MoeConfig& m = c.moe;
    fmt::print("moe                {} routed (top-{}, {} scores) + {} shared experts of {}, groups {}/{}, first {} layers dense\n",
               m.n_routed_experts, m.num_experts_per_tok, m.scoring == MoeScoring::Sigmoid ? "sigmoid" : "softmax",
               m.n_shared_experts, m.moe_intermediate_size, m.topk_group, m.n_group, m.first_k_dense_replace);
  }
  fmt::print("parameters         {} total ({})\n", human(static_cast<double>(p.total)), p.total);
  fmt::print("activated/token    {} ({}): routed experts in use + output head, input embedding excluded\n",
             human(static_cast<double>(p.activated_per_token)), p.activated_per_token);
  const int64_t cached = kv_cache_values_per_token(c), full = full_kv_values_per_token(c);
  fmt::print("kv cache/token     {} values = {} B in bf16, {} B in f32\n", cached, cached * 2, cached * 4);
  if (c.uses_mla())
    fmt::print("full kv/token      {} values = {} B in bf16 ({:.1f}x the MLA latent cache)\n", full, full * 2,
               static_cast<double>(full) / cached);
}

}  // namespace

void add_inspect_command(CLI::App& app) {
  auto path = std::make_shared<std::string>();
  CLI::App* cmd = app.add_subcommand("inspect", "Summarise a checkpoint: architecture, parameter counts, KV-cache size");
  cmd->add_option("path", *path, "Checkpoint directory or config.json")->required();
  cmd->callback([path] { inspect(*path); });
}

}  // namespace grpo::cli
