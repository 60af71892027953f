#include "rewards/arith_eval.h"

#include <stdexcept>

namespace grpo::rewards {
namespace {

constexpr std::size_t kMaxLength = 1000;
constexpr int kMaxDepth = 100;

struct ArithError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Recursive descent over: expr = term {(+|-) term}; term = factor {(*|/) factor};
// factor = (+|-) factor | number | ( expr ).
class ArithParser {
 public:
  explicit ArithParser(std::string_view text) : text_(text) {}

  Rational parse() {
    Rational value = expression();
    skip_spaces();
    if (at_ < text_.size()) fail("unexpected '" + std::string(1, text_[at_]) + "'");
    return value;
  }

 private:
  [[noreturn]] void fail(const std::string& why) {
    throw ArithError(why + " at offset " + std::to_string(at_));
  }

  static Rational checked(std::optional<Rational> value, const char* operation) {
    if (!value) throw ArithError(std::string(operation));
    return *value;
  }

  void skip_spaces() {
    while (at_ < text_.size() && (text_[at_] == ' ' || text_[at_] == '\t' || text_[at_] == '\n')) ++at_;
  }

  // Consumes one operator spelling if present: ASCII or its UTF-8 sign.
  bool take(char ascii, std::string_view unicode = {}) {
    skip_spaces();
    if (at_ < text_.size() && text_[at_] == ascii) {
      ++at_;
      return true;
    }
    if (!unicode.empty() && text_.substr(at_, unicode.size()) == unicode) {
      at_ += unicode.size();
      return true;
    }
    return false;
  }

  Rational expression() {
    Rational value = term();
    for (;;) {
      if (take('+')) {
        value = checked(add(value, term()), "overflow");
      } else if (take('-', "\xE2\x88\x92")) {  // U+2212 minus
        value = checked(subtract(value, term()), "overflow");
      } else {
        return value;
      }
    }
  }

  Rational term() {
    Rational value = factor();
    for (;;) {
      skip_spaces();
      if (text_.substr(at_, 2) == "**") fail("exponentiation is not allowed");
      if (take('*', "\xC3\x97")) {  // U+00D7 multiplication sign
        value = checked(multiply(value, factor()), "overflow");
      } else if (take('/', "\xC3\xB7")) {  // U+00F7 division sign
        const Rational divisor = factor();
        if (divisor.numerator() == 0) fail("division by zero");
        value = checked(divide(value, divisor), "overflow");
      } else {
        return value;
      }
    }
  }

  Rational factor() {
    if (++depth_ > kMaxDepth) fail("nested too deeply");
    Rational value;
    if (take('-', "\xE2\x88\x92")) {
      value = checked(negate(factor()), "overflow");
    } else if (take('+')) {
      value = factor();
    } else if (take('(')) {
      value = expression();
      if (!take(')')) fail("missing ')'");
    } else {
      value = number();
    }
    --depth_;
    return value;
  }

  Rational number() {
    skip_spaces();
    const std::size_t start = at_;
    while (at_ < text_.size() && ((text_[at_] >= '0' && text_[at_] <= '9') || text_[at_] == '.')) ++at_;
    if (start == at_) fail(at_ < text_.size() ? "unexpected '" + std::string(1, text_[at_]) + "'" : "expected a number");
    auto value = Rational::parse_decimal(std::string(text_.substr(start, at_ - start)));
    if (!value) fail("bad or too large number");
    return *value;
  }

  std::string_view text_;
  std::size_t at_ = 0;
  int depth_ = 0;
};

}  // namespace

ArithResult eval_arith(std::string_view expression) {
  ArithResult result;
  if (expression.size() > kMaxLength) {
    result.error = "expression longer than " + std::to_string(kMaxLength) + " bytes";
    return result;
  }
  try {
    result.value = ArithParser(expression).parse();
  } catch (const ArithError& error) {
    result.error = error.what();
  }
  return result;
}

}  // namespace grpo::rewards
