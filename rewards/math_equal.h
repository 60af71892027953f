#pragma once
// Is a predicted answer mathematically the same as the gold one? (verify.math_equal)
//
// Both sides are normalised: LaTeX wrappers ($, \left/\right, \text{}, \mathrm{}, \displaystyle,
// spacing), \dfrac/\tfrac, degrees, percent signs, currency, thousands separators, trailing zeros,
// "x = 3" (compared as 3), a trailing period, unit words after a number ("5 cm"). Then:
//   - multiple choice: a gold letter A-J matches "(B)", "B)", "B.", "\text{(B)}", "B: ..." etc.;
//   - tuples "(1, 2)" and intervals "[1, 3)" compare element-wise with their brackets; sets "\{1, 2\}",
//     bare lists "1, 2" and unions of intervals compare regardless of order; matrices by entry;
//   - expressions are parsed (never evaluated as code): exact rationals compare exactly (0.5 = 1/2,
//     1/3 != 0.333); otherwise values compare with a relative tolerance, and a decimal answer is also
//     accepted when it is the gold value correctly rounded to the places written (>= 2 places);
//   - expressions with variables compare at several sample points ("2x+1" = "1+2x");
//   - a percentage also matches its fraction (50% = 0.5 = 50);
//   - anything else compares as normalised text ("\text{Monday}" = "monday").
// Written the way datasets write them (docs/rewards.md has the table): decimal commas read by the other
// side ("1,5" = 1.5 but a list against a list; "1,000" is thousands); relations turned round and
// compared ("5 < x" = "x \gt 5" != "x \geq 5"), a relation in one quantity answered by its interval;
// "\pm 2" as the set {2, -2}; units in \text{} \mbox{} \textnormal{} with powers, which must match when
// both sides have one; base subscripts ("204_5") equal only to the same base; named values
// ("AB = 4, CD = 5") by name, or in order when unnamed; chains "x = 5 + 6 = 11" by their final value;
// equations up to a non-zero factor; a decimal of approximation_places places for a fraction with no
// finite expansion.
// The gold side decides the structure: a set gold needs a set answer. Collections of more than 64
// items and answers longer than 2000 bytes are never equal (bounded work per call).
#include <string_view>

namespace grpo::rewards {

struct MathEqualOptions {
  double relative_tolerance = 1e-6;  // for values that are not exact rationals (pi, roots, floats)
  // A decimal with at least this many places, correctly rounded, answers a fraction that has no finite
  // decimal expansion ("0.333333" for 1/3). Math-Verify's float_rounding plays the same part.
  int approximation_places = 6;
};

bool math_equal(std::string_view predicted, std::string_view gold, MathEqualOptions options = {});

}  // namespace grpo::rewards
