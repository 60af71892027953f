#pragma once
// Values several test files use; defined once so that test suites compile as unity batches.
#include <limits>

namespace grpo::test {

inline constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
inline constexpr double kInf = std::numeric_limits<double>::infinity();

}  // namespace grpo::test
