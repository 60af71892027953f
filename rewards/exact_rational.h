#pragma once
// Exact rationals over 64-bit integers for answer checking and countdown arithmetic: "1/3 + 1/6" is
// exactly 1/2, so equality needs no tolerance. Every operation reports overflow (nullopt) instead of
// wrapping; callers fall back to floating point or reject the expression.
#include <cstdint>
#include <optional>
#include <string>

namespace grpo::rewards {

class Rational {
 public:
  Rational() = default;
  explicit Rational(std::int64_t integer) : numerator_(integer) {}
  // nullopt for a zero denominator or an unrepresentable result.
  static std::optional<Rational> make(std::int64_t numerator, std::int64_t denominator);
  // Parses "12", "-3.25", "0.5": decimal notation only; nullopt if it does not fit.
  static std::optional<Rational> parse_decimal(const std::string& text);

  std::int64_t numerator() const { return numerator_; }
  std::int64_t denominator() const { return denominator_; }  // always > 0, coprime to numerator
  bool is_integer() const { return denominator_ == 1; }
  double to_double() const { return static_cast<double>(numerator_) / static_cast<double>(denominator_); }
  std::string to_string() const;  // "7" or "-3/4"

  friend bool operator==(const Rational& a, const Rational& b) {
    return a.numerator_ == b.numerator_ && a.denominator_ == b.denominator_;
  }
  friend bool operator!=(const Rational& a, const Rational& b) { return !(a == b); }

 private:
  std::int64_t numerator_ = 0;
  std::int64_t denominator_ = 1;
};

std::optional<Rational> add(const Rational& a, const Rational& b);
std::optional<Rational> subtract(const Rational& a, const Rational& b);
std::optional<Rational> multiply(const Rational& a, const Rational& b);
std::optional<Rational> divide(const Rational& a, const Rational& b);  // nullopt when b == 0
std::optional<Rational> negate(const Rational& a);
// a^exponent for |exponent| <= 64 (nullopt beyond, on overflow, or for 0^negative).
std::optional<Rational> power(const Rational& a, std::int64_t exponent);

}  // namespace grpo::rewards
