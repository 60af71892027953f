#include "rl/data_parallel.h"

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include <limits>
#include <stdexcept>

namespace grpo {

RankShare rank_share(int64_t prompts, const Distributed* distributed) {
  if (!distributed || distributed->world_size() == 1) return {0, prompts};
  const int64_t world = distributed->world_size(), rank = distributed->rank();
  if (prompts < world)
    throw std::invalid_argument(fmt::format("train: {} prompts per step cannot be shared by {} ranks (groups are never split); "
                                            "use at least as many prompts per step as ranks",
                                            prompts, world));
  return {prompts * rank / world, prompts * (rank + 1) / world};
}

void all_reduce(LossStats& stats, Distributed& distributed) {
  if (distributed.world_size() == 1) return;
  std::vector<double> sums = {stats.tokens,         stats.clipped_low, stats.clipped_high,   stats.dual_clipped,
                              stats.ratio_sum,      stats.old_minus_new_sum, stats.ref_kl_sum, stats.entropy_sum,
                              stats.policy_loss,    stats.kl_loss,     stats.entropy_loss,   double(stats.has_ref_kl),
                              double(stats.has_entropy)};
  distributed.all_reduce(sums, Reduction::Sum);
  // The extremes count only where a rank saw tokens; elsewhere they are placeholders.
  const double inf = std::numeric_limits<double>::infinity();
  std::vector<double> lowest = {stats.tokens > 0 ? stats.ratio_min : inf, stats.tokens > 0 ? -stats.ratio_max : inf};
  distributed.all_reduce(lowest, Reduction::Min);
  stats.tokens = sums[0];
  stats.clipped_low = sums[1];
  stats.clipped_high = sums[2];
  stats.dual_clipped = sums[3];
  stats.ratio_sum = sums[4];
  stats.old_minus_new_sum = sums[5];
  stats.ref_kl_sum = sums[6];
  stats.entropy_sum = sums[7];
  stats.policy_loss = sums[8];
  stats.kl_loss = sums[9];
  stats.entropy_loss = sums[10];
  stats.has_ref_kl = sums[11] > 0;
  stats.has_entropy = sums[12] > 0;
  if (stats.tokens > 0) {
    stats.ratio_min = lowest[0];
    stats.ratio_max = -lowest[1];
  }
}

void reduce_rank_local_metrics(StepMetrics& metrics, Distributed& distributed) {
  if (distributed.world_size() == 1) return;
  auto has = [](const std::string& name, const char* part) { return name.find(part) != std::string::npos; };
  std::vector<std::string> max_names, sum_names;
  for (const auto& [name, value] : metrics) {
    if (name.rfind("timing/", 0) == 0) max_names.push_back(name);
    else if (name.rfind("tokens_per_second/", 0) == 0 || has(name, "/failures")) sum_names.push_back(name);
  }
  for (auto [names, op] : {std::make_pair(&max_names, Reduction::Max), std::make_pair(&sum_names, Reduction::Sum)}) {
    std::vector<double> values;
    for (const std::string& n : *names) values.push_back(metrics[n]);
    distributed.all_reduce(values, op);
    for (size_t i = 0; i < names->size(); ++i) metrics[(*names)[i]] = values[i];
  }
}

std::vector<ScoredSample> all_gather(const std::vector<ScoredSample>& samples, Distributed& distributed) {
  if (distributed.world_size() == 1) return samples;
  nlohmann::json mine = nlohmann::json::array();
  for (const ScoredSample& s : samples)
    mine.push_back({{"prompt_index", s.prompt_index}, {"prompt", s.prompt}, {"completion", s.completion}, {"record", s.record},
                    {"reward", s.reward}, {"advantage", s.advantage}, {"rule_values", s.rule_values},
                    {"rule_failures", s.rule_failures}, {"finish_reason", s.finish_reason},
                    {"completion_tokens", s.completion_tokens}});
  std::vector<ScoredSample> all;
  // MessagePack rather than JSON text: completions may hold bytes that are not UTF-8 (a token split
  // inside a character), which JSON text refuses and MessagePack carries as they are.
  const std::vector<std::uint8_t> packed = nlohmann::json::to_msgpack(mine);
  for (const std::string& text : distributed.all_gather(std::string(packed.begin(), packed.end()))) {
    for (const nlohmann::json& j : nlohmann::json::from_msgpack(text)) {
      ScoredSample s;
      s.prompt_index = j.at("prompt_index");
      s.prompt = j.at("prompt");
      s.completion = j.at("completion");
      s.record = j.at("record");
      s.reward = j.at("reward");
      s.advantage = j.at("advantage");
      s.rule_values = j.at("rule_values").get<std::vector<std::pair<std::string, double>>>();
      s.rule_failures = j.at("rule_failures").get<std::vector<std::pair<std::string, std::string>>>();
      s.finish_reason = j.at("finish_reason");
      s.completion_tokens = j.at("completion_tokens");
      all.push_back(std::move(s));
    }
  }
  return all;
}

}  // namespace grpo
