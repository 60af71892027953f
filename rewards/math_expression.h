#pragma once
// A math expression parsed from a (normalised) answer: plain ("3/4", "2*sqrt(3)", "x^2+1") or LaTeX
// ("\frac{3}{4}", "2\sqrt{3}", "x^{2}+1", "\frac{\pi}{2}"). Used by math_equal to compare values
// exactly where possible and numerically or at sample points otherwise; it never evaluates model
// text as code and its size is bounded.
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "rewards/exact_rational.h"

namespace grpo::rewards {

struct MathValue {
  std::optional<Rational> exact;  // when the value is a rational computed without rounding
  double approx = 0.0;
};

class MathExpression {
 public:
  // nullopt when `text` is not an expression this parser knows (words, inequalities, too long).
  // Variables: single letters (with optional subscripts) and Greek letters; `\pi` is the constant;
  // `e` is a variable, so "e^2" matches "e^{2}" symbolically but not 7.389.
  static std::optional<MathExpression> parse(std::string_view text);

  const std::set<std::string>& variables() const { return variables_; }
  // The value with each variable set as in `at` (missing ones are 0). Exact only when nothing
  // irrational or variable was involved.
  MathValue evaluate(const std::map<std::string, double>& at = {}) const;
  // For "3.14"-style literals: how many decimals were written (to accept correctly rounded answers);
  // nullopt for anything else.
  std::optional<int> decimal_places() const { return decimal_places_; }

  enum class Op { number, variable, add, subtract, multiply, divide, power, negate, root, function, factorial };
  struct Node {
    Op op = Op::number;
    int left = -1, right = -1;  // operands (root: radicand, index)
    MathValue value;            // number
    std::string name;           // variable or function
  };

 private:
  friend class MathParser;
  MathValue evaluate(int node, const std::map<std::string, double>& at) const;

  std::vector<Node> nodes_;
  int root_ = -1;
  std::set<std::string> variables_;
  std::optional<int> decimal_places_;
};

}  // namespace grpo::rewards
