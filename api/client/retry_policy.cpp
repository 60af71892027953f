#include "api/client/retry_policy.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>

namespace grpo::api {

bool is_retryable_status(int status) { return status == 0 || status == 408 || status == 429 || status >= 500; }

bool is_fatal_status(int status) { return status == 401 || status == 403 || status == 404; }

double backoff_seconds(const RetryPolicy& policy, int retry, double uniform01, std::optional<double> retry_after_s) {
  if (retry_after_s) return std::min(std::max(*retry_after_s, 0.0), policy.max_retry_after_s);
  const double exponential = policy.initial_backoff_s * std::pow(policy.multiplier, std::max(retry - 1, 0));
  const double capped = std::min(exponential, policy.max_backoff_s);
  return capped * (1.0 + policy.jitter * (2.0 * uniform01 - 1.0));
}

std::optional<double> parse_retry_after(const std::string& value) {
  size_t begin = 0, end = value.size();
  while (begin < end && value[begin] == ' ') ++begin;
  while (end > begin && value[end - 1] == ' ') --end;
  if (begin == end) return std::nullopt;
  const std::string text = value.substr(begin, end - begin);
  if (!std::isdigit(static_cast<unsigned char>(text[0]))) return std::nullopt;  // an HTTP date, or a sign
  char* stop = nullptr;
  const double seconds = std::strtod(text.c_str(), &stop);
  if (stop != text.c_str() + text.size() || !std::isfinite(seconds)) return std::nullopt;
  return seconds;
}

}  // namespace grpo::api
