#include "rl/experiment/jsonl.h"

#include <fmt/core.h>

#include <fstream>
#include <stdexcept>

namespace grpo {

std::vector<nlohmann::json> read_jsonl(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error(fmt::format("{}: cannot open", path));
  std::vector<nlohmann::json> out;
  std::string line;
  for (int64_t number = 1; std::getline(in, line); ++number) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    try {
      out.push_back(nlohmann::json::parse(line));
    } catch (const nlohmann::json::parse_error& e) {
      throw std::runtime_error(fmt::format("{}:{}: not valid JSON: {}", path, number, e.what()));
    }
    if (!out.back().is_object()) throw std::runtime_error(fmt::format("{}:{}: expected a JSON object", path, number));
  }
  return out;
}

}  // namespace grpo
