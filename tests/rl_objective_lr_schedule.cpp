// Learning-rate schedule values at the warm-up start and end, the cosine midpoint and floor, and errors.
#include <doctest/doctest.h>

#include <cmath>
#include <stdexcept>

#include "rl/lr_schedule.h"

using namespace grpo;

TEST_CASE("lr schedule: linear warm-up starts above zero and reaches the peak on its last step") {
  LrSchedule s;
  s.peak = 1e-3;
  s.warmup_steps = 10;
  CHECK(learning_rate(s, 0) == doctest::Approx(1e-4));  // peak · 1/10: the first update already moves
  CHECK(learning_rate(s, 4) == doctest::Approx(5e-4));
  CHECK(learning_rate(s, 9) == doctest::Approx(1e-3));
  CHECK(learning_rate(s, 10) == doctest::Approx(1e-3));
  CHECK(learning_rate(s, 100000) == doctest::Approx(1e-3));  // constant after warm-up
}

TEST_CASE("lr schedule: cosine decays from the peak to the floor, half-way at the midpoint") {
  LrSchedule s;
  s.peak = 1e-3;
  s.warmup_steps = 10;
  s.decay = LrDecay::Cosine;
  s.total_steps = 110;
  s.floor_ratio = 0.1;  // R1's SFT: decay to 1/10 of the initial rate
  CHECK(learning_rate(s, 10) == doctest::Approx(1e-3));
  // Midpoint (step 60): floor + (peak − floor)/2 = 1e-4 + 4.5e-4.
  CHECK(learning_rate(s, 60) == doctest::Approx(5.5e-4));
  // A quarter of the way: ½(1 + cos(π/4)) of the way from floor to peak.
  CHECK(learning_rate(s, 35) == doctest::Approx(1e-4 + 9e-4 * 0.5 * (1 + std::sqrt(0.5))));
  CHECK(learning_rate(s, 110) == doctest::Approx(1e-4));
  CHECK(learning_rate(s, 5000) == doctest::Approx(1e-4));
  s.warmup_steps = 0;
  s.floor_ratio = 0;
  CHECK(learning_rate(s, 0) == doctest::Approx(1e-3));
  CHECK(learning_rate(s, 55) == doctest::Approx(5e-4));
  CHECK(learning_rate(s, 110) == doctest::Approx(0.0));
}

TEST_CASE("lr schedule: invalid settings are rejected naming the field") {
  LrSchedule s;
  s.decay = LrDecay::Cosine;
  s.warmup_steps = 5;
  s.total_steps = 5;
  CHECK_THROWS_WITH_AS(learning_rate(s, 0), doctest::Contains("total_steps > warmup_steps"), std::invalid_argument);
  s.total_steps = 50;
  s.floor_ratio = 1.5;
  CHECK_THROWS_WITH_AS(learning_rate(s, 0), doctest::Contains("floor_ratio"), std::invalid_argument);
  s.floor_ratio = 0;
  CHECK_THROWS_WITH_AS(learning_rate(s, -1), doctest::Contains("step must be >= 0"), std::invalid_argument);
  s.peak = -1;
  CHECK_THROWS_WITH_AS(validate(s), doctest::Contains("peak"), std::invalid_argument);
}
