#pragma once
// Safe arithmetic for countdown-style answers ("(25 - 5) * 4 / 2"): + - * / and parentheses over
// decimal numbers, evaluated in exact rationals. Never calls eval on model text, and has no
// exponentiation, so no input can make it run long ("44 ** 19 ** 35" is rejected, not computed).
#include <optional>
#include <string>
#include <string_view>

#include "rewards/exact_rational.h"

namespace grpo::rewards {

struct ArithResult {
  std::optional<Rational> value;  // set on success
  std::string error;              // why not, otherwise: syntax, division by zero, overflow, too long
};

// Accepts ASCII + - * / ( ), the signs × ÷ − (UTF-8), spaces, and numbers like 12 or 0.5.
// Expressions longer than 1000 bytes or nested deeper than 100 are refused.
ArithResult eval_arith(std::string_view expression);

}  // namespace grpo::rewards
