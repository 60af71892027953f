#include "rewards/math_equal.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "rewards/math_expression.h"

namespace grpo::rewards {
namespace {

constexpr std::size_t kMaxAnswerLength = 2000;
constexpr int kSamplePoints = 8;   // evaluations per symbolic comparison
constexpr int kMinValidPoints = 3; // points where both sides are finite, needed to call them equal
constexpr std::size_t kMaxItems = 64;  // larger collections are never equal (matching is quadratic)

// --- text normalisation -----------------------------------------------------------------------------

void replace_all(std::string& text, std::string_view from, std::string_view to) {
  if (from.empty()) return;
  std::size_t at = 0;
  while ((at = text.find(from, at)) != std::string::npos) {
    text.replace(at, from.size(), to);
    at += to.size();
  }
}

std::string trim(std::string_view text) {
  std::size_t begin = 0, end = text.size();
  while (begin < end && std::isspace(static_cast<unsigned char>(text[begin]))) ++begin;
  while (end > begin && std::isspace(static_cast<unsigned char>(text[end - 1]))) --end;
  return std::string(text.substr(begin, end - begin));
}

// Replaces \name{X} by " X " (the braced argument kept, the command dropped).
void unwrap_command(std::string& text, std::string_view name) {
  const std::string command = "\\" + std::string(name);
  std::size_t at = 0;
  while ((at = text.find(command, at)) != std::string::npos) {
    std::size_t open = at + command.size();
    while (open < text.size() && text[open] == ' ') ++open;
    if (open >= text.size() || text[open] != '{' ||
        (at + command.size() < text.size() && std::isalpha(static_cast<unsigned char>(text[at + command.size()])))) {
      at += command.size();
      continue;
    }
    int depth = 0;
    std::size_t close = open;
    for (; close < text.size(); ++close) {
      if (text[close] == '{') ++depth;
      if (text[close] == '}' && --depth == 0) break;
    }
    if (close >= text.size()) return;
    const std::string inner = text.substr(open + 1, close - open - 1);
    text.replace(at, close + 1 - at, " " + inner + " ");
  }
}

struct Normalized {
  std::string text;
  bool percent = false;
};

Normalized normalize(std::string_view raw) {
  Normalized result;
  std::string s = trim(raw);
  // Matrix row breaks (\\) would otherwise be read as the spacing command "\ ".
  replace_all(s, "\\\\", "\x01");
  replace_all(s, "{,}", ",");  // TeX's thousands-separator spelling 1{,}000
  // Unicode spellings first.
  for (const auto& [from, to] : {std::pair<std::string_view, std::string_view>{"\xE2\x88\x92", "-"},
                                 {"\xC3\x97", "*"}, {"\xC3\xB7", "/"}, {"\xCF\x80", "\\pi "},
                                 {"\xE2\x88\x9E", "\\infty "}, {"\xE2\x88\x9A", "\\sqrt"},
                                 {"\xC2\xB0", ""}, {"\xE2\x80\x89", " "}}) {
    replace_all(s, from, to);
  }
  for (std::string_view name : {"text", "textbf", "textrm", "textit", "mathrm", "mathbf", "mathit",
                                "mbox", "operatorname", "boxed", "mathbb"}) {
    unwrap_command(s, name);
  }
  for (std::string_view from : {"\\displaystyle", "\\textstyle", "\\left.", "\\right.", "\\left", "\\right",
                                "\\!", "\\,", "\\;", "\\:", "\\ ", "\\quad", "\\qquad", "\\(", "\\)",
                                "\\[", "\\]", "\\$", "$", "~"}) {
    replace_all(s, from, from == "\\ " || from == "~" || from == "\\quad" || from == "\\qquad" ? " " : "");
  }
  for (std::string_view from : {"\\dfrac", "\\tfrac", "\\cfrac"}) replace_all(s, from, "\\frac");
  for (std::string_view from : {"^{\\circ}", "^\\circ", "\\circ", "\\degree", "^{o}"}) replace_all(s, from, "");
  for (std::string_view from : {"\\%", "%"}) {
    if (s.find(from) != std::string::npos) {
      result.percent = true;
      replace_all(s, from, "");
    }
  }
  replace_all(s, "\\{", "{");
  replace_all(s, "\\}", "}");
  for (const auto& [from, to] : {std::pair<std::string_view, std::string_view>{"\\leq", "<="},
                                 {"\\geq", ">="}, {"\\neq", "!="}, {"\\le", "<="}, {"\\ge", ">="},
                                 {"\\ne", "!="}, {"\\lt", "<"}, {"\\gt", ">"}}) {
    replace_all(s, from, to);
  }
  replace_all(s, "\x01", "\\\\");
  replace_all(s, " or ", ",");
  replace_all(s, " and ", ",");
  s = trim(s);
  while (!s.empty() && (s.back() == '.' || s.back() == ';')) s = trim(s.substr(0, s.size() - 1));
  // Collapse runs of spaces.
  std::string collapsed;
  for (char c : s) {
    if (c == ' ' && !collapsed.empty() && collapsed.back() == ' ') continue;
    collapsed += c;
  }
  result.text = trim(collapsed);
  return result;
}

// --- structure: scalars, tuples/intervals, sets/lists, matrices --------------------------------------

struct Answer {
  enum class Kind { scalar, ordered, unordered } kind = Kind::scalar;
  char open = 0, close = 0;  // brackets of an ordered collection ('M' for a matrix)
  std::string text;          // scalar
  std::vector<Answer> items;
};

bool is_open(char c) { return c == '(' || c == '[' || c == '{'; }
bool is_close(char c) { return c == ')' || c == ']' || c == '}'; }

// Splits at `separator` where no bracket is open; nullopt if brackets do not balance.
std::optional<std::vector<std::string>> split_top_level(const std::string& s, std::string_view separator) {
  std::vector<std::string> parts;
  int depth = 0;
  std::size_t start = 0;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (is_open(s[i])) ++depth;
    if (is_close(s[i]) && --depth < 0) return std::nullopt;
    if (depth == 0 && s.compare(i, separator.size(), separator) == 0) {
      parts.push_back(trim(s.substr(start, i - start)));
      start = i + separator.size();
      i = start - 1;
    }
  }
  if (depth != 0) return std::nullopt;
  parts.push_back(trim(s.substr(start)));
  return parts;
}

bool is_thousands_number(const std::string& s) {
  std::size_t i = s[0] == '-' ? 1 : 0;
  std::size_t digits = 0;
  while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) ++i, ++digits;
  if (digits == 0 || digits > 3 || i >= s.size() || s[i] != ',') return false;
  while (i < s.size() && s[i] == ',') {
    for (int k = 1; k <= 3; ++k) {
      if (i + k >= s.size() || !std::isdigit(static_cast<unsigned char>(s[i + k]))) return false;
    }
    i += 4;
  }
  if (i < s.size() && s[i] == '.') {
    ++i;
    if (i >= s.size()) return false;
    while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) ++i;
  }
  return i == s.size();
}

bool is_single_variable(const std::string& s) {
  if (s.size() == 1) return std::isalpha(static_cast<unsigned char>(s[0]));
  if (s.size() > 2 && s[1] == '_' && std::isalpha(static_cast<unsigned char>(s[0]))) return true;
  if (s[0] == '\\') return std::all_of(s.begin() + 1, s.end(), [](char c) { return std::isalpha(static_cast<unsigned char>(c)); });
  // f(x) = ..., as in "f(x) = 2x"
  return s.size() == 4 && std::isalpha(static_cast<unsigned char>(s[0])) && s[1] == '(' && s[3] == ')';
}

Answer parse_answer(std::string s, int depth = 0);

Answer collection(Answer::Kind kind, char open, char close, const std::vector<std::string>& parts, int depth) {
  Answer answer;
  if (parts.size() > kMaxItems) return answer;  // an empty scalar: never equal to anything
  answer.kind = kind;
  answer.open = open;
  answer.close = close;
  for (const std::string& part : parts) answer.items.push_back(parse_answer(part, depth + 1));
  return answer;
}

Answer parse_answer(std::string s, int depth) {
  Answer answer;
  answer.text = s;
  if (s.empty() || depth > 8) return answer;
  // Matrices: \begin{pmatrix} a & b \\ c & d \end{pmatrix}, compared entry by entry.
  for (std::string_view environment : {"pmatrix", "bmatrix", "matrix", "vmatrix"}) {
    const std::string begin = "\\begin{" + std::string(environment) + "}";
    const std::string end = "\\end{" + std::string(environment) + "}";
    if (s.rfind(begin, 0) == 0 && s.size() >= begin.size() + end.size() &&
        s.compare(s.size() - end.size(), end.size(), end) == 0) {
      std::string body = s.substr(begin.size(), s.size() - begin.size() - end.size());
      std::vector<std::string> cells;
      int rows = 0;
      const auto row_texts = split_top_level(body + "\\\\", "\\\\");
      if (!row_texts) return answer;
      for (const std::string& row : *row_texts) {
        if (row.empty()) continue;
        ++rows;
        const auto row_cells = split_top_level(row, "&");
        if (!row_cells) return answer;
        cells.insert(cells.end(), row_cells->begin(), row_cells->end());
      }
      Answer matrix = collection(Answer::Kind::ordered, 'M', static_cast<char>('0' + std::min(rows, 9)), cells, depth);
      return matrix;
    }
  }
  // "x = 3" is the answer 3; "(x, y) = (1, 2)" is (1, 2).
  if (auto sides = split_top_level(s, "="); sides && sides->size() == 2 && (*sides)[0].find('<') == std::string::npos &&
                                            (*sides)[0].find('>') == std::string::npos && (*sides)[0].find('!') == std::string::npos) {
    const std::string& left = (*sides)[0];
    if (is_single_variable(left) || (left.size() > 2 && left.front() == '(' && left.back() == ')')) {
      return parse_answer((*sides)[1], depth + 1);
    }
  }
  if (auto pieces = split_top_level(s, "\\cup"); pieces && pieces->size() > 1) {
    return collection(Answer::Kind::unordered, 0, 0, *pieces, depth);
  }
  if (is_thousands_number(s)) {
    answer.text.erase(std::remove(answer.text.begin(), answer.text.end(), ','), answer.text.end());
    return answer;
  }
  if (s.size() >= 2 && is_open(s.front()) && is_close(s.back())) {
    const std::string inner = s.substr(1, s.size() - 2);
    if (auto parts = split_top_level(inner, ","); parts && parts->size() >= 2) {
      if (s.front() == '{') return collection(Answer::Kind::unordered, '{', '}', *parts, depth);
      return collection(Answer::Kind::ordered, s.front(), s.back(), *parts, depth);
    }
  }
  if (auto parts = split_top_level(s, ","); parts && parts->size() >= 2) {
    return collection(Answer::Kind::unordered, 0, 0, *parts, depth);
  }
  return answer;
}

// --- comparing values -------------------------------------------------------------------------------

bool close_enough(double a, double b, double tolerance) {
  if (std::isnan(a) || std::isnan(b)) return false;
  if (std::isinf(a) || std::isinf(b)) return a == b;
  return std::fabs(a - b) <= tolerance * std::max({std::fabs(a), std::fabs(b), 1e-12});
}

bool values_equal(const MathValue& predicted, const MathValue& gold, std::optional<int> predicted_places,
                  double tolerance) {
  if (predicted.exact && gold.exact) return *predicted.exact == *gold.exact;
  if (close_enough(predicted.approx, gold.approx, tolerance)) return true;
  // "1.41" for \sqrt{2}: a decimal answer correctly rounded to the places it shows.
  if (!gold.exact && predicted_places && *predicted_places >= 2 && std::isfinite(gold.approx)) {
    const double half_unit = 0.5 * std::pow(10.0, -*predicted_places);
    return std::fabs(predicted.approx - gold.approx) <= half_unit * (1 + 1e-9);
  }
  return false;
}

MathValue scaled_down(const MathValue& value) {  // value / 100, exactly when possible
  MathValue result{std::nullopt, value.approx / 100.0};
  if (value.exact) result.exact = divide(*value.exact, Rational(100));
  return result;
}

// Both sides with the same variables: equal at every sample point where both are defined.
bool symbolically_equal(const MathExpression& predicted, const MathExpression& gold, double tolerance) {
  std::uint64_t seed = 0x9E3779B97F4A7C15ull;
  int valid = 0;
  for (int point = 0; point < kSamplePoints; ++point) {
    std::map<std::string, double> at;
    for (const std::string& name : gold.variables()) {
      seed = seed * 6364136223846793005ull + 1442695040888963407ull;
      at[name] = 0.3 + 2.4 * static_cast<double>(seed >> 11) / static_cast<double>(1ull << 53);
    }
    const double a = predicted.evaluate(at).approx, b = gold.evaluate(at).approx;
    const bool a_defined = std::isfinite(a), b_defined = std::isfinite(b);
    if (a_defined != b_defined) return false;
    if (!a_defined) continue;
    if (!close_enough(a, b, std::max(tolerance, 1e-9))) return false;
    ++valid;
  }
  return valid >= kMinValidPoints;
}

bool expressions_equal(const MathExpression& predicted, bool predicted_percent, const MathExpression& gold,
                       bool gold_percent, double tolerance) {
  if (predicted.variables() != gold.variables()) return false;
  if (!gold.variables().empty()) return symbolically_equal(predicted, gold, tolerance);
  const MathValue p = predicted.evaluate(), g = gold.evaluate();
  if (values_equal(p, g, predicted.decimal_places(), tolerance)) return true;
  // 50% is 0.5 as well as 50.
  if (predicted_percent && values_equal(scaled_down(p), g, std::nullopt, tolerance)) return true;
  if (gold_percent && values_equal(p, scaled_down(g), predicted.decimal_places(), tolerance)) return true;
  return false;
}

// --- scalars ----------------------------------------------------------------------------------------

std::string canonical_text(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (std::isspace(static_cast<unsigned char>(c)) || c == '{' || c == '}' || c == '\\') continue;
    out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return out;
}

std::optional<char> choice_letter(const std::string& s, bool strict) {
  std::string t = trim(s);
  if (!strict) {
    for (std::string_view prefix : {"Option ", "option ", "Answer: ", "answer: ", "Answer ", "Choice "}) {
      if (t.rfind(prefix, 0) == 0) t = trim(t.substr(prefix.size()));
    }
  }
  std::size_t i = 0;
  if (i < t.size() && t[i] == '(') ++i;
  if (i >= t.size() || t[i] < 'A' || t[i] > 'J') return std::nullopt;
  const char letter = t[i++];
  if (i < t.size() && t[i] == ')') ++i;
  if (strict) return i == t.size() ? std::optional<char>(letter) : std::nullopt;
  if (i < t.size() && (std::isalnum(static_cast<unsigned char>(t[i])) || t[i] == '_' || t[i] == '^')) {
    return std::nullopt;
  }
  return letter;
}

// "5 cm", "12 dollars", "3 \text{ m}^2": the number without its trailing unit words.
std::optional<std::string> without_units(const std::string& s) {
  std::string t = trim(s);
  bool stripped = false;
  for (;;) {
    std::size_t end = t.size();
    if (t.find('^') != std::string::npos) {
      while (end > 0 && (std::isdigit(static_cast<unsigned char>(t[end - 1])) || t[end - 1] == '^' ||
                         t[end - 1] == '{' || t[end - 1] == '}' || t[end - 1] == ' ')) {
        --end;  // unit exponents: m^2, m^{3}
      }
    }
    std::size_t start = end;
    while (start > 0 && std::isalpha(static_cast<unsigned char>(t[start - 1]))) --start;
    const std::string word = t.substr(start, end - start);
    const bool unit_like = word.size() >= 2 && start > 0 && t[start - 1] == ' ' && word != "pi" &&
                           word != "inf" && word != "infty" && word != "sqrt";
    if (!unit_like) break;
    t = trim(t.substr(0, start));
    stripped = true;
  }
  if (!stripped || t.empty()) return std::nullopt;
  return t;
}

bool scalars_equal(const std::string& predicted, bool predicted_percent, const std::string& gold, bool gold_percent,
                   double tolerance) {
  if (canonical_text(predicted) == canonical_text(gold) && !canonical_text(gold).empty()) return true;
  if (auto gold_letter = choice_letter(gold, /*strict=*/true)) {
    auto letter = choice_letter(predicted, /*strict=*/false);
    return letter && *letter == *gold_letter;
  }
  auto predicted_expression = MathExpression::parse(predicted);
  auto gold_expression = MathExpression::parse(gold);
  if (predicted_expression && gold_expression &&
      expressions_equal(*predicted_expression, predicted_percent, *gold_expression, gold_percent, tolerance)) {
    return true;
  }
  // Units: retry without trailing unit words on either side.
  const auto predicted_bare = without_units(predicted), gold_bare = without_units(gold);
  if (predicted_bare || gold_bare) {
    auto p = MathExpression::parse(predicted_bare.value_or(predicted));
    auto g = MathExpression::parse(gold_bare.value_or(gold));
    if (p && g && expressions_equal(*p, predicted_percent, *g, gold_percent, tolerance)) return true;
  }
  // Equations with no single-variable side: compare left - right.
  auto predicted_sides = split_top_level(predicted, "=");
  auto gold_sides = split_top_level(gold, "=");
  if (predicted_sides && gold_sides && predicted_sides->size() == 2 && gold_sides->size() == 2) {
    auto p = MathExpression::parse("(" + (*predicted_sides)[0] + ")-(" + (*predicted_sides)[1] + ")");
    auto g = MathExpression::parse("(" + (*gold_sides)[0] + ")-(" + (*gold_sides)[1] + ")");
    if (p && g && expressions_equal(*p, false, *g, false, tolerance)) return true;
  }
  return false;
}

bool answers_equal(const Answer& predicted, bool predicted_percent, const Answer& gold, bool gold_percent,
                   double tolerance) {
  using Kind = Answer::Kind;
  if (gold.kind == Kind::scalar) {
    if (predicted.kind != Kind::scalar) return false;
    return scalars_equal(predicted.text, predicted_percent, gold.text, gold_percent, tolerance);
  }
  if (predicted.items.size() != gold.items.size()) return false;
  if (gold.kind == Kind::ordered) {
    if (predicted.kind != Kind::ordered || predicted.open != gold.open || predicted.close != gold.close) return false;
    for (std::size_t i = 0; i < gold.items.size(); ++i) {
      if (!answers_equal(predicted.items[i], predicted_percent, gold.items[i], gold_percent, tolerance)) return false;
    }
    return true;
  }
  // Unordered: a set or list answer; a bare list answers a set ("1, 2" for {1, 2}) and vice versa.
  if (predicted.kind == Kind::ordered && predicted.open != '{') return false;
  std::vector<bool> used(predicted.items.size(), false);
  for (const Answer& item : gold.items) {
    bool matched = false;
    for (std::size_t i = 0; i < predicted.items.size() && !matched; ++i) {
      if (!used[i] && answers_equal(predicted.items[i], predicted_percent, item, gold_percent, tolerance)) {
        used[i] = matched = true;
      }
    }
    if (!matched) return false;
  }
  return true;
}

}  // namespace

bool math_equal(std::string_view predicted, std::string_view gold, MathEqualOptions options) {
  if (predicted.size() > kMaxAnswerLength || gold.size() > kMaxAnswerLength) return false;
  const Normalized p = normalize(predicted), g = normalize(gold);
  if (p.text.empty() || g.text.empty()) return false;
  return answers_equal(parse_answer(p.text), p.percent, parse_answer(g.text), g.percent,
                       options.relative_tolerance);
}

}  // namespace grpo::rewards
