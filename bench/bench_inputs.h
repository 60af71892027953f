#pragma once
// What the rollout benchmarks feed the engine and read from their command lines.
#include <cstdint>
#include <sstream>
#include <string>
#include <vector>

#include "policy/model_config.h"
#include "rollout/rollout_engine.h"

namespace grpo::bench {

// `batch` prompts of `length` tokens, one sample each, different per row (ids 3 and up: no specials).
inline std::vector<PromptRequest> synthetic_prompts(const ModelConfig& config, int64_t batch, int64_t length) {
  std::vector<PromptRequest> out;
  for (int64_t i = 0; i < batch; ++i) {
    std::vector<int32_t> prompt(static_cast<size_t>(length));
    for (int64_t t = 0; t < length; ++t) prompt[t] = static_cast<int32_t>(3 + (i * 7 + t * 13) % (config.vocab_size - 3));
    out.push_back({prompt, 1, static_cast<uint64_t>(i)});
  }
  return out;
}

// "1,8,64" -> {1, 8, 64}
inline std::vector<int64_t> parse_list(const std::string& s) {
  std::vector<int64_t> out;
  std::stringstream in(s);
  for (std::string item; std::getline(in, item, ',');) out.push_back(std::stoll(item));
  return out;
}

}  // namespace grpo::bench
