// grpo logprobs --model DIR --ids 5,17,3,...: per-token log-probabilities as JSON, the common currency for
// comparing numerics with other implementations (transformers, vLLM).
#include <CLI/CLI.hpp>
#include <fmt/core.h>

#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>

#include "policy/checkpoint.h"
#include "policy/device.h"
#include "policy/token_logprobs.h"
#include "rl/cli/commands.h"

namespace grpo::cli {
namespace {

std::vector<int64_t> parse_ids(const std::string& text) {
  std::vector<int64_t> ids;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) {
    try {
      size_t used = 0;
      ids.push_back(std::stoll(item, &used));
      if (used != item.size()) throw std::invalid_argument(item);
    } catch (const std::exception&) {
      throw std::invalid_argument(fmt::format("--ids: \"{}\" is not an integer (expected e.g. 5,17,3)", item));
    }
  }
  return ids;
}

}  // namespace

void add_logprobs_command(CLI::App& app) {
  struct Options {
    std::string model, ids, device = "auto";
    double temperature = 1.0;
  };
  auto opt = std::make_shared<Options>();
  CLI::App* cmd = app.add_subcommand("logprobs", "Print log p(token | prefix) for each token after the first, as JSON");
  cmd->add_option("--model", opt->model, "Checkpoint directory")->required();
  cmd->add_option("--ids", opt->ids, "Comma-separated token ids, at least two")->required();
  cmd->add_option("--temperature", opt->temperature, "Divide logits by this before the softmax");
  cmd->add_option("--device", opt->device, "auto, cpu, cuda or cuda:N");
  cmd->callback([opt] {
    std::vector<int64_t> ids = parse_ids(opt->ids);
    if (ids.size() < 2) throw std::invalid_argument("--ids: need at least two tokens (a prefix and a next token)");
    LoadReport report;
    CausalLM model = load_checkpoint(opt->model, &report);
    for (const std::string& note : report.notes) fmt::print(stderr, "{}: {}\n", opt->model, note);
    for (const std::string& name : report.unexpected) fmt::print(stderr, "warning: unused tensor {}\n", name);
    const int64_t vocab = model->config().vocab_size;
    for (int64_t id : ids)
      if (id < 0 || id >= vocab) throw std::invalid_argument(fmt::format("--ids: {} is outside the vocabulary [0, {})", id, vocab));
    Placement placement = resolve_placement(opt->device);
    place_model(model, placement);
    model->eval();
    torch::NoGradGuard no_grad;
    torch::Tensor input = torch::tensor(ids, torch::kLong).unsqueeze(0).to(placement.device);
    LogprobOptions options;
    options.temperature = opt->temperature;
    torch::Tensor lp = token_logprobs(model, input, {}, options).squeeze(0).to(torch::kCPU, torch::kDouble);
    nlohmann::json out;
    out["tokens"] = ids;
    out["logprobs"] = std::vector<double>(lp.data_ptr<double>(), lp.data_ptr<double>() + lp.numel());
    out["note"] = "logprobs[i] = log p(tokens[i+1] | tokens[0..i])";
    fmt::print("{}\n", out.dump());
  });
}

}  // namespace grpo::cli
