#include "rollout/memory_budget.h"

#include <fmt/core.h>

#include <cctype>
#include <cmath>
#include <stdexcept>

#include "policy/model_size.h"

namespace grpo {

int64_t cache_bytes_per_token(const ModelConfig& config, int64_t element_bytes) {
  return kv_cache_values_per_token(config) * element_bytes;
}

int64_t parse_byte_size(const std::string& text) {
  auto bad = [&] {
    return std::invalid_argument(fmt::format(
        "memory size \"{}\": expected a positive number with an optional unit (B, k, M, G, T, KiB, MiB, GiB, TiB)", text));
  };
  size_t end = 0;
  double value = 0;
  try {
    value = std::stod(text, &end);
  } catch (const std::exception&) {
    throw bad();
  }
  std::string unit;
  for (size_t i = end; i < text.size(); ++i)
    if (!std::isspace(static_cast<unsigned char>(text[i]))) unit += static_cast<char>(std::tolower(static_cast<unsigned char>(text[i])));
  if (!unit.empty() && unit.back() == 'b') unit.pop_back();
  double scale = 0;
  if (unit.empty()) scale = 1;
  else if (unit == "k") scale = 1e3;
  else if (unit == "m") scale = 1e6;
  else if (unit == "g") scale = 1e9;
  else if (unit == "t") scale = 1e12;
  else if (unit == "ki") scale = 1024.0;
  else if (unit == "mi") scale = 1024.0 * 1024;
  else if (unit == "gi") scale = 1024.0 * 1024 * 1024;
  else if (unit == "ti") scale = 1024.0 * 1024 * 1024 * 1024;
  const double bytes = value * scale;
  if (scale == 0 || !std::isfinite(bytes) || bytes < 1 || bytes > 9.0e18) throw bad();
  return static_cast<int64_t>(bytes);
}

std::string format_bytes(int64_t bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double value = static_cast<double>(bytes);
  int unit = 0;
  while (value >= 1024 && unit < 4) {
    value /= 1024;
    ++unit;
  }
  return unit == 0 ? fmt::format("{} B", bytes) : fmt::format("{:.2f} {}", value, units[unit]);
}

}  // namespace grpo
