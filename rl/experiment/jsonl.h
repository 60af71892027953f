#pragma once
// JSON Lines files of records (one JSON object per line; blank lines skipped).
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace grpo {

// Throws std::runtime_error naming the file and line of an unreadable file, invalid JSON or a line that
// is not an object.
std::vector<nlohmann::json> read_jsonl(const std::string& path);

}  // namespace grpo
