#pragma once
// When a request to an endpoint is tried again, and after how long: exponential backoff with jitter
// (delay k = initial * multiplier^(k-1), capped, times a factor drawn from [1 - jitter, 1 + jitter]), or
// the server's own Retry-After when it gives one. Rate limits (429), server errors (5xx), request
// timeouts (408), dropped connections and read timeouts are retried; what a retry cannot change (400
// bad request, 401/403 refused key, 404 unknown model or path, 422) is not.
#include <cstdint>
#include <optional>
#include <string>

namespace grpo::api {

struct RetryPolicy {
  int max_attempts = 6;            // the first try included
  double initial_backoff_s = 1.0;  // before the first retry
  double multiplier = 2.0;
  double max_backoff_s = 60.0;     // cap of the exponential part
  double jitter = 0.25;            // the delay is scaled by a factor uniform in [1 - jitter, 1 + jitter]
  double max_retry_after_s = 600;  // a server's Retry-After is honoured up to this
};

// Whether an HTTP status is worth another try. Status 0 stands for "no response" (connection refused or
// dropped, read timeout): retried.
bool is_retryable_status(int status);

// Whether a status says every further request will fail alike (a refused key, an unknown model or
// path): the run stops instead of sending the rest.
bool is_fatal_status(int status);

// The wait before retry `retry` (1 for the first retry): Retry-After when given (capped at
// max_retry_after_s), else the capped exponential delay times (1 + jitter * (2 * uniform01 - 1)).
double backoff_seconds(const RetryPolicy& policy, int retry, double uniform01, std::optional<double> retry_after_s);

// A Retry-After header's delay in seconds: a non-negative number of seconds (a decimal fraction is
// accepted); nullopt for an HTTP date or anything else, which falls back to the backoff.
std::optional<double> parse_retry_after(const std::string& value);

}  // namespace grpo::api
