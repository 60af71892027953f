#include "rewards/exact_rational.h"

#include <limits>
#include <numeric>

namespace grpo::rewards {
namespace {

using Wide = __int128;
constexpr std::int64_t kMax = std::numeric_limits<std::int64_t>::max();

// Reduces a wide fraction and narrows it; nullopt when it does not fit (INT64_MIN is excluded so
// negation never overflows).
std::optional<Rational> narrow(Wide numerator, Wide denominator) {
  if (denominator == 0) return std::nullopt;
  if (denominator < 0) {
    numerator = -numerator;
    denominator = -denominator;
  }
  Wide a = numerator < 0 ? -numerator : numerator, b = denominator;
  while (b != 0) {
    const Wide t = a % b;
    a = b;
    b = t;
  }
  if (a > 1) {
    numerator /= a;
    denominator /= a;
  }
  if (numerator > kMax || numerator < -kMax || denominator > kMax) return std::nullopt;
  return Rational::make(static_cast<std::int64_t>(numerator), static_cast<std::int64_t>(denominator));
}

}  // namespace

std::optional<Rational> Rational::make(std::int64_t numerator, std::int64_t denominator) {
  if (denominator == 0 || numerator == std::numeric_limits<std::int64_t>::min() ||
      denominator == std::numeric_limits<std::int64_t>::min()) {
    return std::nullopt;
  }
  if (denominator < 0) {
    numerator = -numerator;
    denominator = -denominator;
  }
  const std::int64_t divisor = std::gcd(numerator, denominator);
  Rational r;
  r.numerator_ = numerator / (divisor == 0 ? 1 : divisor);
  r.denominator_ = denominator / (divisor == 0 ? 1 : divisor);
  return r;
}

std::optional<Rational> Rational::parse_decimal(const std::string& text) {
  std::size_t i = 0;
  bool negative = false;
  if (i < text.size() && (text[i] == '-' || text[i] == '+')) negative = text[i++] == '-';
  Wide numerator = 0, denominator = 1;
  bool digits = false, point = false;
  for (; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '.' && !point) {
      point = true;
      continue;
    }
    if (c < '0' || c > '9') return std::nullopt;
    digits = true;
    numerator = numerator * 10 + (c - '0');
    if (point) denominator *= 10;
    if (numerator > kMax || denominator > kMax) return std::nullopt;
  }
  if (!digits) return std::nullopt;
  return narrow(negative ? -numerator : numerator, denominator);
}

std::string Rational::to_string() const {
  return denominator_ == 1 ? std::to_string(numerator_)
                           : std::to_string(numerator_) + "/" + std::to_string(denominator_);
}

std::optional<Rational> add(const Rational& a, const Rational& b) {
  return narrow(Wide(a.numerator()) * b.denominator() + Wide(b.numerator()) * a.denominator(),
                Wide(a.denominator()) * b.denominator());
}

std::optional<Rational> subtract(const Rational& a, const Rational& b) {
  return narrow(Wide(a.numerator()) * b.denominator() - Wide(b.numerator()) * a.denominator(),
                Wide(a.denominator()) * b.denominator());
}

std::optional<Rational> multiply(const Rational& a, const Rational& b) {
  return narrow(Wide(a.numerator()) * b.numerator(), Wide(a.denominator()) * b.denominator());
}

std::optional<Rational> divide(const Rational& a, const Rational& b) {
  if (b.numerator() == 0) return std::nullopt;
  return narrow(Wide(a.numerator()) * b.denominator(), Wide(a.denominator()) * b.numerator());
}

std::optional<Rational> negate(const Rational& a) { return Rational::make(-a.numerator(), a.denominator()); }

std::optional<Rational> power(const Rational& a, std::int64_t exponent) {
  if (exponent > 64 || exponent < -64) return std::nullopt;
  if (exponent < 0) {
    if (a.numerator() == 0) return std::nullopt;
    auto inverse = Rational::make(a.denominator(), a.numerator());
    return inverse ? power(*inverse, -exponent) : std::nullopt;
  }
  Rational result(1);
  for (std::int64_t i = 0; i < exponent; ++i) {
    auto next = multiply(result, a);
    if (!next) return std::nullopt;
    result = *next;
  }
  return result;
}

}  // namespace grpo::rewards
