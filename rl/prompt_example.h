#pragma once
// One prompt of a dataset: the text the policy sees (already templated), its token ids, and the record
// the reward rules read (answer, tests, ...). Shared by training, evaluation and sampling.
#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace grpo {

struct PromptExample {
  std::string prompt;
  std::vector<int32_t> prompt_ids;
  nlohmann::json record = nlohmann::json::object();
};

}  // namespace grpo
