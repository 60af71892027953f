// When the endpoint client retries and how long it waits (api/client/retry_policy.h).
#include <doctest/doctest.h>

#include "api/client/retry_policy.h"

using namespace grpo::api;

TEST_CASE("api: backoff doubles from the initial delay, is capped, and jitter scales it within [1-j, 1+j]") {
  RetryPolicy p;
  p.initial_backoff_s = 0.5;
  p.multiplier = 2;
  p.max_backoff_s = 3;
  p.jitter = 0.2;
  // uniform 0.5 is the middle of the jitter range: the bare exponential delays 0.5, 1, 2, then the cap 3.
  CHECK(backoff_seconds(p, 1, 0.5, std::nullopt) == doctest::Approx(0.5));
  CHECK(backoff_seconds(p, 2, 0.5, std::nullopt) == doctest::Approx(1.0));
  CHECK(backoff_seconds(p, 3, 0.5, std::nullopt) == doctest::Approx(2.0));
  CHECK(backoff_seconds(p, 4, 0.5, std::nullopt) == doctest::Approx(3.0));
  CHECK(backoff_seconds(p, 9, 0.5, std::nullopt) == doctest::Approx(3.0));
  // The ends of the jitter range: 2 * 0.8 and 2 * 1.2.
  CHECK(backoff_seconds(p, 3, 0.0, std::nullopt) == doctest::Approx(1.6));
  CHECK(backoff_seconds(p, 3, 1.0, std::nullopt) == doctest::Approx(2.4));
}

TEST_CASE("api: a server's Retry-After replaces the backoff, up to max_retry_after_s") {
  RetryPolicy p;
  p.max_retry_after_s = 10;
  CHECK(backoff_seconds(p, 1, 0.9, 4.0) == doctest::Approx(4.0));
  CHECK(backoff_seconds(p, 5, 0.1, 0.0) == doctest::Approx(0.0));
  CHECK(backoff_seconds(p, 1, 0.5, 120.0) == doctest::Approx(10.0));
}

TEST_CASE("api: Retry-After is read as seconds; a date or garbage falls back to the backoff") {
  CHECK(parse_retry_after("7") == std::optional<double>(7.0));
  CHECK(parse_retry_after(" 0.25 ") == std::optional<double>(0.25));
  CHECK_FALSE(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"));
  CHECK_FALSE(parse_retry_after("-3"));
  CHECK_FALSE(parse_retry_after("5s"));
  CHECK_FALSE(parse_retry_after(""));
}

TEST_CASE("api: rate limits, server errors and lost connections are retried; refusals are not, and some stop the run") {
  for (int status : {0, 408, 429, 500, 502, 503, 504}) CHECK_MESSAGE(is_retryable_status(status), status);
  for (int status : {400, 401, 403, 404, 422}) CHECK_MESSAGE(!is_retryable_status(status), status);
  for (int status : {401, 403, 404}) CHECK_MESSAGE(is_fatal_status(status), status);
  for (int status : {0, 400, 422, 429, 500}) CHECK_MESSAGE(!is_fatal_status(status), status);
}
