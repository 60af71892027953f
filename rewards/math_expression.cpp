#include "rewards/math_expression.h"

#include <cctype>
#include <cmath>
#include <stdexcept>

namespace grpo::rewards {
namespace {

constexpr std::size_t kMaxLength = 2000;  // longer "answers" are not answers
constexpr int kMaxDepth = 100;
constexpr std::size_t kMaxNodes = 1000;

struct NotAnExpression : std::runtime_error {
  using std::runtime_error::runtime_error;
};

const char* const kFunctions[] = {"sin", "cos", "tan", "cot", "sec", "csc", "arcsin", "arccos",
                                  "arctan", "sinh", "cosh", "tanh", "ln", "log", "exp"};
const char* const kGreek[] = {"alpha", "beta", "gamma", "delta", "epsilon", "varepsilon", "zeta", "eta",
                              "theta", "vartheta", "iota", "kappa", "lambda", "mu", "nu", "xi", "rho",
                              "sigma", "tau", "upsilon", "phi", "varphi", "chi", "psi", "omega"};

bool is_function(const std::string& word) {
  for (const char* name : kFunctions) {
    if (word == name) return true;
  }
  return false;
}

bool is_greek(const std::string& word) {
  for (const char* name : kGreek) {
    if (word == name) return true;
  }
  return false;
}

MathValue inexact(double x) { return MathValue{std::nullopt, x}; }

MathValue exact(const Rational& q) { return MathValue{q, q.to_double()}; }

// Exact square root of a rational when numerator and denominator are perfect squares.
std::optional<Rational> exact_sqrt(const Rational& q) {
  if (q.numerator() < 0) return std::nullopt;
  auto root = [](std::int64_t n) -> std::optional<std::int64_t> {
    auto r = static_cast<std::int64_t>(std::llround(std::sqrt(static_cast<double>(n))));
    for (std::int64_t c = r > 1 ? r - 1 : 0; c <= r + 1; ++c) {
      if (c * c == n) return c;
    }
    return std::nullopt;
  };
  auto n = root(q.numerator()), d = root(q.denominator());
  if (!n || !d) return std::nullopt;
  return Rational::make(*n, *d);
}

}  // namespace

// Recursive descent: sum = product {(+|-) product}; product = signed {(*|/|implicit) signed};
// signed = (+|-) signed | power; power = postfix [^ signed]; postfix = primary [!];
// primary = number | variable | constant | (sum) | {sum} | [sum] | |sum| | \frac | \sqrt | function.
class MathParser {
 public:
  explicit MathParser(std::string_view text) : text_(text) {}

  MathExpression parse() {
    expression_.root_ = sum();
    skip_spaces();
    if (at_ != text_.size()) fail();
    return std::move(expression_);
  }

 private:
  using Op = MathExpression::Op;

  [[noreturn]] void fail() { throw NotAnExpression("not an expression"); }

  int add_node(Op op, int left = -1, int right = -1, MathValue value = {}, std::string name = {}) {
    if (expression_.nodes_.size() >= kMaxNodes) fail();
    expression_.nodes_.push_back(MathExpression::Node{op, left, right, value, std::move(name)});
    return static_cast<int>(expression_.nodes_.size()) - 1;
  }

  void skip_spaces() {
    while (at_ < text_.size() && std::isspace(static_cast<unsigned char>(text_[at_]))) ++at_;
  }

  char peek() {
    skip_spaces();
    return at_ < text_.size() ? text_[at_] : '\0';
  }

  bool take(char c) {
    if (peek() != c) return false;
    ++at_;
    return true;
  }

  // The LaTeX command name at the cursor (after '\'), without consuming it.
  std::string peek_command() {
    skip_spaces();
    if (at_ >= text_.size() || text_[at_] != '\\') return {};
    std::size_t end = at_ + 1;
    while (end < text_.size() && std::isalpha(static_cast<unsigned char>(text_[end]))) ++end;
    return std::string(text_.substr(at_ + 1, end - at_ - 1));
  }

  void take_command(const std::string& name) { at_ += name.size() + 1; }

  struct Depth {
    explicit Depth(int& depth) : depth_(depth) {
      if (++depth_ > kMaxDepth) throw NotAnExpression("too deep");
    }
    ~Depth() { --depth_; }
    int& depth_;
  };

  int sum() {
    Depth guard(depth_);
    int left = product();
    for (;;) {
      if (take('+')) {
        left = add_node(Op::add, left, product());
      } else if (take('-')) {
        left = add_node(Op::subtract, left, product());
      } else {
        return left;
      }
    }
  }

  bool starts_primary() {
    const char c = peek();
    if (std::isdigit(static_cast<unsigned char>(c)) || std::isalpha(static_cast<unsigned char>(c)) || c == '(' ||
        c == '{' || c == '.') {
      return true;
    }
    if (c == '\\') {
      const std::string command = peek_command();
      return !(command == "cdot" || command == "times" || command == "div" || command.empty());
    }
    return false;
  }

  int product() {
    int left = signed_term();
    for (;;) {
      const std::string command = peek_command();
      if (take('*') || command == "cdot" || command == "times") {
        if (!command.empty()) take_command(command);
        left = add_node(Op::multiply, left, signed_term());
      } else if (take('/') || command == "div") {
        if (!command.empty()) take_command(command);
        left = add_node(Op::divide, left, signed_term());
      } else if (starts_primary()) {  // implicit multiplication: 2\pi, 3x, 2(x+1)
        left = add_node(Op::multiply, left, power());
      } else {
        return left;
      }
    }
  }

  int signed_term() {
    Depth guard(depth_);
    if (take('-')) return add_node(Op::negate, signed_term());
    if (take('+')) return signed_term();
    return power();
  }

  int power() {
    int base = postfix();
    if (take('^')) {
      Depth guard(depth_);
      const int exponent = peek() == '{' ? primary() : signed_exponent();
      return add_node(Op::power, base, exponent);
    }
    return base;
  }

  // An exponent without braces binds one primary: x^2y is (x^2)*y; x^-1 is allowed.
  int signed_exponent() {
    if (take('-')) return add_node(Op::negate, signed_exponent());
    return postfix();
  }

  int postfix() {
    int value = primary();
    while (take('!')) value = add_node(Op::factorial, value);
    return value;
  }

  // A braced group, or (TeX style) a single digit or letter: \frac12, \sqrt2.
  int argument() {
    if (peek() == '{') return primary();
    skip_spaces();
    if (at_ < text_.size() && std::isalnum(static_cast<unsigned char>(text_[at_]))) {
      const char c = text_[at_++];
      if (std::isdigit(static_cast<unsigned char>(c))) return add_node(Op::number, -1, -1, exact(Rational(c - '0')));
      return variable(std::string(1, c));
    }
    return primary();
  }

  int variable(std::string name) {
    // Subscripts belong to the name: x_1, a_{n}.
    if (at_ < text_.size() && text_[at_] == '_') {
      ++at_;
      if (at_ < text_.size() && text_[at_] == '{') {
        const std::size_t close = text_.find('}', at_);
        if (close == std::string_view::npos) fail();
        name += "_" + std::string(text_.substr(at_ + 1, close - at_ - 1));
        at_ = close + 1;
      } else if (at_ < text_.size() && std::isalnum(static_cast<unsigned char>(text_[at_]))) {
        name += "_" + std::string(1, text_[at_++]);
      } else {
        fail();
      }
    }
    expression_.variables_.insert(name);
    return add_node(Op::variable, -1, -1, {}, name);
  }

  int number() {
    const std::size_t start = at_;
    while (at_ < text_.size() && std::isdigit(static_cast<unsigned char>(text_[at_]))) ++at_;
    int decimals = -1;
    if (at_ < text_.size() && text_[at_] == '.') {
      ++at_;
      const std::size_t fraction = at_;
      while (at_ < text_.size() && std::isdigit(static_cast<unsigned char>(text_[at_]))) ++at_;
      decimals = static_cast<int>(at_ - fraction);
      if (decimals == 0 && fraction - 1 == start) fail();  // a lone "."
    }
    const std::string digits(text_.substr(start, at_ - start));
    MathValue value;
    if (auto q = Rational::parse_decimal(digits)) {
      value = exact(*q);
    } else {
      value = inexact(std::strtod(digits.c_str(), nullptr));
    }
    // Scientific notation: 1.5e-3, 2E5 (an 'e' not followed by a digit is the variable e).
    if (at_ + 1 < text_.size() && (text_[at_] == 'e' || text_[at_] == 'E')) {
      std::size_t k = at_ + 1;
      if (text_[k] == '+' || text_[k] == '-') ++k;
      if (k < text_.size() && std::isdigit(static_cast<unsigned char>(text_[k]))) {
        const std::size_t exponent_start = at_ + 1;
        at_ = k;
        while (at_ < text_.size() && std::isdigit(static_cast<unsigned char>(text_[at_]))) ++at_;
        const long exponent = std::strtol(std::string(text_.substr(exponent_start, at_ - exponent_start)).c_str(), nullptr, 10);
        std::optional<Rational> scale = std::labs(exponent) <= 18 ? grpo::rewards::power(Rational(10), exponent) : std::nullopt;
        std::optional<Rational> scaled = value.exact && scale ? multiply(*value.exact, *scale) : std::nullopt;
        value = scaled ? exact(*scaled) : inexact(value.approx * std::pow(10.0, static_cast<double>(exponent)));
        decimals = -1;
      }
    }
    if (!pending_decimals_ && decimals > 0) pending_decimals_ = decimals;
    const int node = add_node(Op::number, -1, -1, value);
    // A mixed number: 2\frac{1}{2} is 2 + 1/2 in answers, not 2 * 1/2.
    if (decimals < 0 && peek_command() == "frac") {
      const std::size_t saved = at_;
      take_command("frac");
      const int numerator = argument(), denominator = argument();
      const auto& nodes = expression_.nodes_;
      if (nodes[static_cast<std::size_t>(numerator)].op == Op::number &&
          nodes[static_cast<std::size_t>(denominator)].op == Op::number) {
        return add_node(Op::add, node, add_node(Op::divide, numerator, denominator));
      }
      at_ = saved;
    }
    return node;
  }

  int primary() {
    Depth guard(depth_);
    const char c = peek();
    if (std::isdigit(static_cast<unsigned char>(c)) || c == '.') return number();
    for (const auto& [open, close] : {std::pair{'(', ')'}, std::pair{'{', '}'}, std::pair{'[', ']'}}) {
      if (take(open)) {
        const int inner = sum();
        if (!take(close)) fail();
        return inner;
      }
    }
    if (take('|')) {
      const int inner = sum();
      if (!take('|')) fail();
      return add_node(Op::function, inner, -1, {}, "abs");
    }
    if (std::isalpha(static_cast<unsigned char>(c))) {
      std::size_t end = at_;
      while (end < text_.size() && std::isalpha(static_cast<unsigned char>(text_[end]))) ++end;
      const std::string word(text_.substr(at_, end - at_));
      if (is_function(word) || word == "sqrt") {
        at_ = end;
        return function(word);
      }
      if (word == "pi" || word == "inf" || word == "infinity") {
        at_ = end;
        return add_node(Op::number, -1, -1, inexact(word == "pi" ? M_PI : INFINITY));
      }
      // Words are not products of variables: "yes" must not equal "sey".
      if (word.size() > 2) fail();
      ++at_;
      return variable(std::string(1, c));
    }
    if (c == '\\') {
      const std::string command = peek_command();
      take_command(command);
      if (command == "frac" || command == "dfrac" || command == "tfrac" || command == "cfrac") {
        const int numerator = argument();
        return add_node(Op::divide, numerator, argument());
      }
      if (command == "sqrt") return function("sqrt");
      if (command == "pi") return add_node(Op::number, -1, -1, inexact(M_PI));
      if (command == "infty" || command == "infinity") return add_node(Op::number, -1, -1, inexact(INFINITY));
      if (is_function(command)) return function(command);
      if (is_greek(command)) return variable(command);
      fail();
    }
    fail();
  }

  int function(const std::string& name) {
    if (name == "sqrt") {
      int index = -1;
      if (take('[')) {
        index = sum();
        if (!take(']')) fail();
      }
      const int radicand = argument();
      return add_node(Op::root, radicand, index);
    }
    int base = -1;
    if (name == "log" && take('_')) base = argument();  // \log_2 8
    int argument_node;
    if (peek() == '^') {  // \sin^2 x
      take('^');
      const int exponent = argument();
      argument_node = add_node(Op::function, power(), base, {}, name);
      return add_node(Op::power, argument_node, exponent);
    }
    argument_node = power();
    return add_node(Op::function, argument_node, base, {}, name);
  }

  std::string_view text_;
  std::size_t at_ = 0;
  int depth_ = 0;
  MathExpression expression_;

 public:
  std::optional<int> pending_decimals_;
};

std::optional<MathExpression> MathExpression::parse(std::string_view text) {
  if (text.empty() || text.size() > kMaxLength) return std::nullopt;
  try {
    MathParser parser(text);
    MathExpression expression = parser.parse();
    // Only a lone decimal literal ("3.14", "-0.50") carries a written precision.
    const bool lone_literal = expression.nodes_.size() == 1 ||
                              (expression.nodes_.size() == 2 && expression.nodes_[1].op == Op::negate);
    if (lone_literal) expression.decimal_places_ = parser.pending_decimals_;
    return expression;
  } catch (const NotAnExpression&) {
    return std::nullopt;
  }
}

MathValue MathExpression::evaluate(const std::map<std::string, double>& at) const {
  return evaluate(root_, at);
}

MathValue MathExpression::evaluate(int index, const std::map<std::string, double>& at) const {
  const Node& node = nodes_[static_cast<std::size_t>(index)];
  auto operand = [&](int i) { return evaluate(i, at); };
  // Exact when both sides are and the operation stays representable; double otherwise.
  auto combine = [](const MathValue& a, const MathValue& b, auto exact_op, auto double_op) {
    if (a.exact && b.exact) {
      if (auto q = exact_op(*a.exact, *b.exact)) return exact(*q);
    }
    return inexact(double_op(a.approx, b.approx));
  };
  switch (node.op) {
    case Op::number:
      return node.value;
    case Op::variable: {
      auto found = at.find(node.name);
      return inexact(found == at.end() ? 0.0 : found->second);
    }
    case Op::add:
      return combine(operand(node.left), operand(node.right), add, [](double a, double b) { return a + b; });
    case Op::subtract:
      return combine(operand(node.left), operand(node.right), subtract, [](double a, double b) { return a - b; });
    case Op::multiply:
      return combine(operand(node.left), operand(node.right), multiply, [](double a, double b) { return a * b; });
    case Op::divide:
      return combine(operand(node.left), operand(node.right), divide, [](double a, double b) { return a / b; });
    case Op::negate: {
      const MathValue a = operand(node.left);
      if (a.exact) {
        if (auto q = negate(*a.exact)) return exact(*q);
      }
      return inexact(-a.approx);
    }
    case Op::power: {
      const MathValue base = operand(node.left), exponent = operand(node.right);
      if (base.exact && exponent.exact && exponent.exact->is_integer()) {
        if (auto q = grpo::rewards::power(*base.exact, exponent.exact->numerator())) return exact(*q);
      }
      const double result = std::pow(base.approx, exponent.approx);
      // Overflow is not infinity: 10^{1000} must not equal 10^{999}.
      if (std::isinf(result) && std::isfinite(base.approx) && std::isfinite(exponent.approx)) return inexact(NAN);
      return inexact(result);
    }
    case Op::root: {
      const MathValue radicand = operand(node.left);
      if (node.right < 0) {
        if (radicand.exact) {
          if (auto q = exact_sqrt(*radicand.exact)) return exact(*q);
        }
        return inexact(std::sqrt(radicand.approx));
      }
      const MathValue index = operand(node.right);
      const double x = radicand.approx, n = index.approx;
      // Odd roots of negatives are real: \sqrt[3]{-8} = -2.
      const bool odd = std::fmod(std::fabs(n), 2.0) == 1.0;
      const double root = x < 0 && odd ? -std::pow(-x, 1.0 / n) : std::pow(x, 1.0 / n);
      const double rounded = std::round(root);
      if (radicand.exact && index.exact && std::fabs(root - rounded) < 1e-9 && std::fabs(rounded) < 1e6) {
        auto check = grpo::rewards::power(Rational(static_cast<std::int64_t>(rounded)), index.exact->numerator());
        if (index.exact->is_integer() && check && *check == *radicand.exact) {
          return exact(Rational(static_cast<std::int64_t>(rounded)));
        }
      }
      return inexact(root);
    }
    case Op::factorial: {
      const MathValue a = operand(node.left);
      if (a.exact && a.exact->is_integer() && a.exact->numerator() >= 0 && a.exact->numerator() <= 20) {
        std::int64_t f = 1;
        for (std::int64_t k = 2; k <= a.exact->numerator(); ++k) f *= k;
        return exact(Rational(f));
      }
      return inexact(std::tgamma(a.approx + 1.0));
    }
    case Op::function: {
      const double x = operand(node.left).approx;
      const std::string& f = node.name;
      if (f == "abs") {
        const MathValue a = operand(node.left);
        if (a.exact) {
          if (auto q = a.exact->numerator() < 0 ? negate(*a.exact) : a.exact) return exact(*q);
        }
        return inexact(std::fabs(x));
      }
      if (f == "sin") return inexact(std::sin(x));
      if (f == "cos") return inexact(std::cos(x));
      if (f == "tan") return inexact(std::tan(x));
      if (f == "cot") return inexact(1.0 / std::tan(x));
      if (f == "sec") return inexact(1.0 / std::cos(x));
      if (f == "csc") return inexact(1.0 / std::sin(x));
      if (f == "arcsin") return inexact(std::asin(x));
      if (f == "arccos") return inexact(std::acos(x));
      if (f == "arctan") return inexact(std::atan(x));
      if (f == "sinh") return inexact(std::sinh(x));
      if (f == "cosh") return inexact(std::cosh(x));
      if (f == "tanh") return inexact(std::tanh(x));
      if (f == "ln") return inexact(std::log(x));
      if (f == "exp") return inexact(std::exp(x));
      if (f == "log") {
        if (node.right >= 0) return inexact(std::log(x) / std::log(operand(node.right).approx));
        return inexact(std::log10(x));
      }
      return inexact(NAN);
    }
  }
  return inexact(NAN);
}

}  // namespace grpo::rewards
