#pragma once
// One completion to score, as the rules see it: the Lua table passed to a rule holds every field of
// `record`, then `prompt`, `completion`, `completion_tokens` and `finish_reason` (these win over record
// fields of the same name; the last two only when known).
#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>

namespace grpo::rewards {

struct Sample {
  std::string prompt;
  std::string completion;
  nlohmann::json record = nlohmann::json::object();  // the data record: answer, tests, numbers, ...
  std::optional<std::int64_t> completion_tokens;
  std::string finish_reason;  // "stop" or "length"; empty when unknown
};

}  // namespace grpo::rewards
