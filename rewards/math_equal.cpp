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
constexpr std::size_t kMaxItems = 64;
constexpr int kMinApproximationPlaces = 6;  // decimals accepted for a fraction with no finite expansion  // larger collections are never equal (matching is quadratic)

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


// Text whose every backslash was doubled by an extra round of escaping ("\\frac{1}{2}"): a doubled
// backslash before a known command is one backslash (a matrix row break "\\" before a letter stays).
void undouble_backslashes(std::string& text) {
  static const char* const kCommands[] = {
      "frac", "dfrac", "tfrac", "left", "right", "boxed", "sqrt", "pi", "text", "mathrm", "mathbf", "le", "ge",
      "leq", "geq", "lt", "gt", "neq", "ne", "cdot", "times", "infty", "begin", "end", "pm", "mp", "in", "cup",
      "approx", "circ", "div", "alpha", "beta", "theta", "sin", "cos", "tan", "log", "ln", "dots", "ldots", "quad"};
  std::size_t at = 0;
  while ((at = text.find("\\\\", at)) != std::string::npos) {
    std::size_t end = at + 2;
    while (end < text.size() && std::isalpha(static_cast<unsigned char>(text[end]))) ++end;
    const std::string word = text.substr(at + 2, end - at - 2);
    bool known = false;
    for (const char* command : kCommands) known = known || word == command;
    if (known) {
      text.erase(at, 1);
      at += 1;
    } else {
      at += 2;
    }
  }
}

// \begin{array}{cc} ... \end{array} (with its brackets, "[\begin{array}...\end{array}]") is a matrix.
void array_to_matrix(std::string& text) {
  const std::string begin = "\\begin{array}{";
  std::size_t at = text.find(begin);
  if (at == std::string::npos) return;
  const std::size_t spec_end = text.find('}', at + begin.size());
  const std::size_t end = text.find("\\end{array}");
  if (spec_end == std::string::npos || end == std::string::npos || end < spec_end) return;
  text = text.substr(0, at) + "\\begin{pmatrix}" + text.substr(spec_end + 1, end - spec_end - 1) + "\\end{pmatrix}" +
         text.substr(end + 11);
}

struct Normalized {
  std::string text;
  bool percent = false;
};

Normalized normalize(std::string_view raw) {
  Normalized result;
  std::string s = trim(raw);
  undouble_backslashes(s);
  // "11,\! 111": a thousands comma followed by a negative thin space.
  replace_all(s, ",\\! ", ",");
  replace_all(s, ",\\!", ",");
  replace_all(s, "{, }", "{,}");
  replace_all(s, " {,}", "{,}");
  replace_all(s, "{,}\\!", ",");
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
                                "mbox", "textnormal", "textsf", "mathsf", "operatorname", "boxed", "mathbb"}) {
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
  array_to_matrix(s);
  s = trim(s);
  while (!s.empty() && (s.back() == '.' || s.back() == ';')) s = trim(s.substr(0, s.size() - 1));
  // Collapse runs of spaces.
  std::string collapsed;
  for (char c : s) {
    if (c == ' ' && !collapsed.empty() && collapsed.back() == ' ') continue;
    collapsed += c;
  }
  // Lists: "1 or 2", "19, 46, and 82", "(11,7)or(7,11)", "-12;-11;-10".
  replace_all(collapsed, ")or(", "),(");
  replace_all(collapsed, ";", ",");
  for (std::string_view from : {", and ", ", or ", ",and ", ",or ", " or ", " and "}) replace_all(collapsed, from, ",");
  result.text = trim(collapsed);
  return result;
}

// --- structure: scalars, tuples/intervals, sets/lists, matrices --------------------------------------

struct Answer {
  enum class Kind { scalar, ordered, unordered, relation } kind = Kind::scalar;
  char open = 0, close = 0;  // brackets of an ordered collection ('M' for a matrix)
  std::string text;          // scalar
  std::vector<Answer> items;      // a relation's sides, in order
  std::vector<std::string> ops;   // a relation's operators ("<", "<=", "!="; ">" and ">=" are turned round)
  std::string equation;           // "y = 2x + 1" for the scalar 2x + 1 read from it
  std::string decimal_reading;    // "1.5" for the list "1,5": a decimal comma, if the other side says so
  std::string name;               // "AB" for the 4 read from "AB = 4"
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
  if (s[s[0] == '-' ? 1 : 0] == '0') return false;  // "0,111" is a decimal comma
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

// The left side of "AB = 4", "|AB| = 1", "\frac{NO}{BO} = ...", "A:B = 1", "S_{MBCN}:S = 7:32": a name
// for a quantity (letters, subscripts, bars, colons, a fraction of names), not an expression to solve.
bool is_name_like(const std::string& s) {
  if (is_single_variable(s)) return true;
  std::string t = s;
  for (std::string_view command : {"\\frac", "\\angle", "\\overline", "\\triangle", "\\vec"}) replace_all(t, command, "");
  if (t.empty() || std::isdigit(static_cast<unsigned char>(t[0]))) return false;
  bool letter = false;
  for (char c : t) {
    if (std::isalpha(static_cast<unsigned char>(c))) {
      letter = true;
    } else if (!(std::isdigit(static_cast<unsigned char>(c)) || c == '_' || c == '{' || c == '}' || c == '(' ||
                 c == ')' || c == '|' || c == ':' || c == ' ' || c == '\'')) {
      return false;
    }
  }
  return letter;
}

// "1 000", "1 000 000,5": thousands separated by spaces.
bool is_space_grouped_number(const std::string& s) {
  std::size_t i = s[0] == '-' ? 1 : 0;
  std::size_t digits = 0;
  while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) ++i, ++digits;
  if (digits == 0 || digits > 3 || i >= s.size() || s[i] != ' ') return false;
  while (i < s.size() && s[i] == ' ') {
    for (int k = 1; k <= 3; ++k) {
      if (i + k >= s.size() || !std::isdigit(static_cast<unsigned char>(s[i + k]))) return false;
    }
    i += 4;
  }
  if (i < s.size() && (s[i] == '.' || s[i] == ',')) {
    ++i;
    if (i >= s.size()) return false;
    while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) ++i;
  }
  return i == s.size();
}

// "1,5", "1000,99", "-0,111": one comma between digit runs (not a thousands group): a decimal comma or
// a list of two numbers, which the other side decides.
bool is_decimal_comma_number(const std::string& s) {
  std::size_t i = s[0] == '-' ? 1 : 0;
  const std::size_t start = i;
  while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) ++i;
  if (i == start || i >= s.size() || s[i] != ',') return false;
  const std::size_t fraction = ++i;
  while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) ++i;
  return i > fraction && i == s.size();
}

// Relation operators at the top level: "-2 <= x <= 7" gives sides {-2, x, 7} and ops {<=, <=}.
bool split_relation(const std::string& s, std::vector<std::string>& sides, std::vector<std::string>& ops) {
  int depth = 0;
  std::size_t start = 0;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (is_open(s[i])) ++depth;
    if (is_close(s[i])) --depth;
    if (depth != 0) continue;
    std::string op;
    if (s.compare(i, 2, "<=") == 0 || s.compare(i, 2, ">=") == 0 || s.compare(i, 2, "!=") == 0) {
      op = s.substr(i, 2);
    } else if (s[i] == '<' || s[i] == '>') {
      op = s.substr(i, 1);
    } else {
      continue;
    }
    sides.push_back(trim(s.substr(start, i - start)));
    ops.push_back(op);
    start = i + op.size();
    i = start - 1;
  }
  if (ops.empty()) return false;
  sides.push_back(trim(s.substr(start)));
  for (const std::string& side : sides) {
    if (side.empty()) return false;
  }
  return true;
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
  // A matrix in brackets, "[\begin{pmatrix} ... \end{pmatrix}]", is the matrix.
  if (s.size() > 2 && (s.front() == '(' || s.front() == '[') && (s.back() == ')' || s.back() == ']')) {
    const std::string inner = trim(s.substr(1, s.size() - 2));
    if (inner.rfind("\\begin{", 0) == 0 && inner.size() > 7 && inner.compare(inner.size() - 7, 7, "matrix}") == 0 &&
        inner.find("\\begin{", 1) == std::string::npos) {
      return parse_answer(inner, depth + 1);
    }
  }
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
  // "x \approx 11" is 11; "1/3 \approx 0.33" is 1/3 (the exact value before the approximation).
  if (auto pieces = split_top_level(s, "\\approx"); pieces && pieces->size() >= 2) {
    return parse_answer(is_name_like(pieces->front()) ? pieces->back() : pieces->front(), depth + 1);
  }
  // "x \in [-2, 7]" is the interval.
  if (auto pieces = split_top_level(s, "\\in "); pieces && pieces->size() == 2 && is_name_like((*pieces)[0])) {
    return parse_answer((*pieces)[1], depth + 1);
  }
  // "\pm 2" is the two values 2 and -2; "1 \pm \sqrt{2}" is 1 + \sqrt{2} and 1 - \sqrt{2}.
  for (std::string_view sign : {"\\pm", "\\mp"}) {
    const std::size_t at = s.find(sign);
    if (at != std::string::npos && s.find("\\pm", at + 3) == std::string::npos &&
        s.find("\\mp", at + 3) == std::string::npos && s.find('=') == std::string::npos &&
        (at + 3 >= s.size() || !std::isalpha(static_cast<unsigned char>(s[at + 3])))) {
      const std::string before = s.substr(0, at), after = s.substr(at + 3);
      return collection(Answer::Kind::unordered, 0, 0, {before + "+" + after, before + "-" + after}, depth);
    }
  }
  // Lists of named values: "AB = 4, CD = 5", "x_1 = 2, x_2 = 3".
  if (auto parts = split_top_level(s, ","); parts && parts->size() >= 2 &&
      std::count_if(parts->begin(), parts->end(), [](const std::string& part) {
        return part.find('=') != std::string::npos;
      }) >= 2) {
    return collection(Answer::Kind::unordered, 0, 0, *parts, depth);
  }
  // Relations: "x > 5" (= "5 < x"), "-2 <= x <= 7", "x != 3".
  if (std::vector<std::string> sides, ops; split_relation(s, sides, ops)) {
    if (std::all_of(ops.begin(), ops.end(), [](const std::string& op) { return op[0] == '>'; })) {
      std::reverse(sides.begin(), sides.end());
      std::reverse(ops.begin(), ops.end());
      for (std::string& op : ops) op[0] = '<';
    }
    Answer relation;
    relation.kind = Answer::Kind::relation;
    relation.text = s;
    relation.ops = ops;
    for (const std::string& side : sides) relation.items.push_back(parse_answer(side, depth + 1));
    return relation;
  }
  // "x = 3" is the answer 3; "(x, y) = (1, 2)" is (1, 2); "AB = 4" is 4; "x = 5 + 5 + 1 = 11" is 11.
  if (auto sides = split_top_level(s, "="); sides && sides->size() >= 2) {
    const std::string& left = (*sides)[0];
    if (sides->size() >= 3 || is_name_like(left) || (left.size() > 2 && left.front() == '(' && left.back() == ')')) {
      Answer value = parse_answer(sides->back(), depth + 1);
      if (value.kind == Answer::Kind::scalar && sides->size() == 2) value.equation = s;
      if (sides->size() == 2 && is_name_like(left)) value.name = left;
      return value;
    }
    // A computation "5 \times 6 \times 4 = 120" answers with its result.
    if (sides->size() == 2) {
      const auto left_value = MathExpression::parse(left), right_value = MathExpression::parse((*sides)[1]);
      if (left_value && right_value && left_value->variables().empty() && right_value->variables().empty()) {
        return parse_answer((*sides)[1], depth + 1);
      }
    }
  }
  if (is_space_grouped_number(s)) {
    s.erase(std::remove(s.begin(), s.end(), ' '), s.end());
    return parse_answer(s, depth + 1);
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
    Answer list = collection(Answer::Kind::unordered, 0, 0, *parts, depth);
    if (is_decimal_comma_number(s)) {
      list.decimal_reading = s;
      std::replace(list.decimal_reading.begin(), list.decimal_reading.end(), ',', '.');
    }
    return list;
  }
  return answer;
}

// --- comparing values -------------------------------------------------------------------------------

bool close_enough(double a, double b, double relative) {
  if (std::isnan(a) || std::isnan(b)) return false;
  if (std::isinf(a) || std::isinf(b)) return a == b;
  return std::fabs(a - b) <= relative * std::max({std::fabs(a), std::fabs(b), 1e-12});
}

bool values_equal(const MathValue& predicted, const MathValue& gold, std::optional<int> predicted_places,
                  const MathEqualOptions& tolerance) {
  if (predicted.exact && gold.exact) {
    if (*predicted.exact == *gold.exact) return true;
    // "0.083333" for 1/12: a decimal of at least 6 places, correctly rounded, for a gold fraction that
    // has no finite decimal expansion (a gold that has one must be written out exactly).
    std::int64_t denominator = gold.exact->denominator();
    while (denominator % 2 == 0) denominator /= 2;
    while (denominator % 5 == 0) denominator /= 5;
    if (denominator == 1 || !predicted_places || *predicted_places < tolerance.approximation_places) return false;
    const double half_unit = 0.5 * std::pow(10.0, -*predicted_places);
    return std::fabs(predicted.approx - gold.approx) <= half_unit * (1 + 1e-6) + 1e-15 * std::fabs(gold.approx);
  }
  if (close_enough(predicted.approx, gold.approx, tolerance.relative_tolerance)) return true;
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
bool symbolically_equal(const MathExpression& predicted, const MathExpression& gold, const MathEqualOptions& tolerance) {
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
    if (!close_enough(a, b, std::max(tolerance.relative_tolerance, 1e-9))) return false;
    ++valid;
  }
  return valid >= kMinValidPoints;
}

// Equations with the same variables: f_p = c * f_g (c != 0) at every sample point, where f = left - right
// ("2x + 4y - 3 = 0" and "y = -x/2 + 3/4"; "x^2/4 + y^2/3 = 1" and "x^2/16 + y^2/12 = 1/4").
bool equations_proportional(const MathExpression& predicted, const MathExpression& gold) {
  if (predicted.variables() != gold.variables() || gold.variables().empty()) return false;
  std::uint64_t seed = 0x2545F4914F6CDD1Dull;
  std::optional<double> ratio;
  int valid = 0;
  for (int point = 0; point < kSamplePoints; ++point) {
    std::map<std::string, double> at;
    for (const std::string& name : gold.variables()) {
      seed = seed * 6364136223846793005ull + 1442695040888963407ull;
      at[name] = 0.3 + 2.4 * static_cast<double>(seed >> 11) / static_cast<double>(1ull << 53);
    }
    const double a = predicted.evaluate(at).approx, b = gold.evaluate(at).approx;
    if (!std::isfinite(a) || !std::isfinite(b)) {
      if (std::isfinite(a) != std::isfinite(b)) return false;
      continue;
    }
    if (std::fabs(b) < 1e-9 || std::fabs(a) < 1e-9) {
      if (!(std::fabs(b) < 1e-9 && std::fabs(a) < 1e-9)) return false;
      continue;
    }
    if (!ratio) ratio = a / b;
    if (!close_enough(a / b, *ratio, 1e-9)) return false;
    ++valid;
  }
  return valid >= kMinValidPoints;
}

bool expressions_equal(const MathExpression& predicted, bool predicted_percent, const MathExpression& gold,
                       bool gold_percent, const MathEqualOptions& tolerance) {
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
  // After the letter only an end, a space or punctuation: "E*2" and "E^2" are expressions, not choices.
  if (i < t.size() && !(t[i] == ' ' || t[i] == '.' || t[i] == ':' || t[i] == ',' || t[i] == ')')) {
    return std::nullopt;
  }
  std::size_t next = i;
  while (next < t.size() && t[next] == ' ') ++next;
  if (next < t.size() && std::string_view("*/+-^=<>!_").find(t[next]) != std::string_view::npos) return std::nullopt;
  return letter;
}

// "204_5", "204_{5}", "1011_{(2)}", "FF_{16}": digits and base, or nullopt. The digits are returned
// without leading zeros, lower case.
std::optional<std::pair<std::string, int>> base_number(const std::string& s) {
  std::string t;
  for (char c : s) {
    if (c != ' ' && c != '{' && c != '}') t += c;
  }
  const std::size_t bar = t.find('_');
  if (bar == std::string::npos || bar == 0) return std::nullopt;
  std::string base_text = t.substr(bar + 1);
  if (base_text.size() > 2 && base_text.front() == '(' && base_text.back() == ')') {
    base_text = base_text.substr(1, base_text.size() - 2);
  }
  if (base_text.empty() || base_text.size() > 2 ||
      !std::all_of(base_text.begin(), base_text.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)); })) {
    return std::nullopt;
  }
  const int base = std::stoi(base_text);
  if (base < 2 || base > 36) return std::nullopt;
  std::string digits;
  bool any_decimal_digit = false;
  for (std::size_t i = 0; i < bar; ++i) {
    const char c = static_cast<char>(std::tolower(static_cast<unsigned char>(t[i])));
    int value = 0;
    if (std::isdigit(static_cast<unsigned char>(c))) {
      value = c - '0';
      any_decimal_digit = true;
    } else if (c >= 'a' && c <= 'z') {
      value = 10 + (c - 'a');
    } else {
      return std::nullopt;
    }
    if (value >= base) return std::nullopt;
    digits += c;
  }
  if (!any_decimal_digit && base != 16) return std::nullopt;  // "ab_{12}" is more likely a name
  const std::size_t nonzero = digits.find_first_not_of('0');
  digits = nonzero == std::string::npos ? "0" : digits.substr(nonzero);
  return std::make_pair(digits, base);
}

// The unit a number is written with ("5 cm^2" gives "cm^2"), without spaces and braces; "" when none.
std::string unit_of(const std::string& number, const std::string& whole) {
  std::string unit;
  for (std::size_t i = number.size(); i < whole.size(); ++i) {
    const char c = whole[i];
    if (c != ' ' && c != '{' && c != '}') unit += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return unit;
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
                   const MathEqualOptions& tolerance) {
  if (canonical_text(predicted) == canonical_text(gold) && !canonical_text(gold).empty()) return true;
  // A number written in another base equals only the same digits in the same base: "204_5" is neither
  // 204 nor 54 (a question asking for base 5 is not answered in base 10).
  const auto predicted_base = base_number(predicted), gold_base = base_number(gold);
  if (predicted_base || gold_base) return predicted_base && gold_base && *predicted_base == *gold_base;
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
  // Both written with units: the units must be the same ("5 cm" is not "5 cm^2").
  const bool units_differ = predicted_bare && gold_bare &&
                            unit_of(*predicted_bare, trim(predicted)) != unit_of(*gold_bare, trim(gold));
  if ((predicted_bare || gold_bare) && !units_differ) {
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
    if (p && g && (expressions_equal(*p, false, *g, false, tolerance) || equations_proportional(*p, *g))) return true;
  }
  return false;
}

bool answers_equal(const Answer& predicted, bool predicted_percent, const Answer& gold, bool gold_percent,
                   const MathEqualOptions& tolerance);

Answer scalar_answer(const std::string& text) {
  Answer answer;
  answer.text = text;
  return answer;
}

// "-2 <= x <= 7" as the interval [-2, 7], "x > 5" as (5, \infty): the solution set of a relation in one
// named quantity; nullopt for anything else.
std::optional<Answer> relation_interval(const Answer& relation) {
  const auto& ops = relation.ops;
  const auto& sides = relation.items;
  auto named = [](const Answer& side) { return side.kind == Answer::Kind::scalar && is_name_like(side.text); };
  if (std::any_of(ops.begin(), ops.end(), [](const std::string& op) { return op[0] != '<'; })) return std::nullopt;
  Answer interval;
  interval.kind = Answer::Kind::ordered;
  if (ops.size() == 2 && named(sides[1]) && !named(sides[0]) && !named(sides[2])) {
    interval.open = ops[0] == "<" ? '(' : '[';
    interval.close = ops[1] == "<" ? ')' : ']';
    interval.items = {sides[0], sides[2]};
    return interval;
  }
  if (ops.size() != 1) return std::nullopt;
  if (named(sides[0]) && !named(sides[1])) {  // x < b
    interval.open = '(';
    interval.close = ops[0] == "<" ? ')' : ']';
    interval.items = {scalar_answer("-\\infty"), sides[1]};
    return interval;
  }
  if (named(sides[1]) && !named(sides[0])) {  // a < x
    interval.open = ops[0] == "<" ? '(' : '[';
    interval.close = ')';
    interval.items = {sides[0], scalar_answer("\\infty")};
    return interval;
  }
  return std::nullopt;
}

bool relations_equal(const Answer& predicted, const Answer& gold, const MathEqualOptions& tolerance) {
  if (predicted.ops == gold.ops && predicted.items.size() == gold.items.size()) {
    bool all = true;
    for (std::size_t i = 0; i < gold.items.size() && all; ++i) {
      all = answers_equal(predicted.items[i], false, gold.items[i], false, tolerance);
    }
    if (all) return true;
  }
  // One relation each: compare right - left ("x < 1" and "-x > -1" both say 1 - x > 0).
  if (predicted.ops.size() != 1 || gold.ops.size() != 1 || predicted.ops[0] != gold.ops[0]) return false;
  auto difference = [](const Answer& relation, bool flipped) {
    const std::string& left = relation.items[0].text;
    const std::string& right = relation.items[1].text;
    return MathExpression::parse(flipped ? "(" + left + ")-(" + right + ")" : "(" + right + ")-(" + left + ")");
  };
  if (predicted.items[0].kind != Answer::Kind::scalar || predicted.items[1].kind != Answer::Kind::scalar ||
      gold.items[0].kind != Answer::Kind::scalar || gold.items[1].kind != Answer::Kind::scalar) {
    return false;
  }
  const auto g = difference(gold, false);
  if (!g) return false;
  for (bool flipped : {false, true}) {
    if (flipped && gold.ops[0] != "!=") break;  // only "a != b" reads the same both ways round
    const auto p = difference(predicted, flipped);
    if (p && expressions_equal(*p, false, *g, false, tolerance)) return true;
  }
  return false;
}

bool answers_equal(const Answer& predicted, bool predicted_percent, const Answer& gold, bool gold_percent,
                   const MathEqualOptions& tolerance) {
  using Kind = Answer::Kind;
  // "1,5" is 1.5 where the other side is one number, and the list 1, 5 where it is a list.
  if (gold.kind == Kind::scalar && predicted.kind == Kind::unordered && !predicted.decimal_reading.empty()) {
    return answers_equal(scalar_answer(predicted.decimal_reading), predicted_percent, gold, gold_percent, tolerance);
  }
  if (gold.kind == Kind::unordered && !gold.decimal_reading.empty() && predicted.kind == Kind::scalar) {
    return answers_equal(predicted, predicted_percent, scalar_answer(gold.decimal_reading), gold_percent, tolerance);
  }
  if (gold.kind == Kind::relation) {
    if (predicted.kind == Kind::relation) return relations_equal(predicted, gold, tolerance);
    // A relation in one quantity is answered by its interval ("x \in [-2, 7]" for -2 <= x <= 7); an
    // interval gold is not answered by a relation.
    if (predicted.kind == Kind::ordered) {
      const auto interval = relation_interval(gold);
      return interval && answers_equal(predicted, predicted_percent, *interval, gold_percent, tolerance);
    }
    return false;
  }
  if (gold.kind == Kind::scalar) {
    if (predicted.kind != Kind::scalar) return false;
    if (scalars_equal(predicted.text, predicted_percent, gold.text, gold_percent, tolerance)) return true;
    // Equations: "y = -x/2 + 3/4" for "2x + 4y - 3 = 0".
    if (!predicted.equation.empty() || !gold.equation.empty()) {
      const std::string& p = predicted.equation.empty() ? predicted.text : predicted.equation;
      const std::string& g = gold.equation.empty() ? gold.text : gold.equation;
      if (p.find('=') != std::string::npos && g.find('=') != std::string::npos) {
        return scalars_equal(p, predicted_percent, g, gold_percent, tolerance);
      }
    }
    return false;
  }
  if (gold.kind == Kind::ordered) {
    if (predicted.items.size() != gold.items.size()) return false;
    if (predicted.kind != Kind::ordered || predicted.open != gold.open || predicted.close != gold.close) return false;
    for (std::size_t i = 0; i < gold.items.size(); ++i) {
      if (!answers_equal(predicted.items[i], predicted_percent, gold.items[i], gold_percent, tolerance)) return false;
    }
    return true;
  }
  // Unordered: a set or list answer; a bare list answers a set ("1, 2" for {1, 2}) and vice versa. As
  // sets: every gold item is among the predicted ones and every predicted item among the gold ones (a
  // repeated item counts once).
  if (predicted.kind != Kind::unordered) return false;
  // Named values ("AB = 4, CD = 5") answered without names ("4, 5") compare in order.
  const auto named = [](const Answer& item) { return !item.name.empty(); };
  if (std::all_of(gold.items.begin(), gold.items.end(), named) &&
      std::none_of(predicted.items.begin(), predicted.items.end(), named)) {
    if (predicted.items.size() != gold.items.size()) return false;
    for (std::size_t i = 0; i < gold.items.size(); ++i) {
      if (!answers_equal(predicted.items[i], predicted_percent, gold.items[i], gold_percent, tolerance)) return false;
    }
    return true;
  }
  auto covered = [&](const std::vector<Answer>& items, const std::vector<Answer>& by, bool items_are_gold) {
    for (const Answer& item : items) {
      bool matched = false;
      for (std::size_t i = 0; i < by.size() && !matched; ++i) {
        // With names on both sides, a value only answers the value of the same name.
        if (named(item) && named(by[i]) && canonical_text(item.name) != canonical_text(by[i].name)) continue;
        matched = items_are_gold ? answers_equal(by[i], predicted_percent, item, gold_percent, tolerance)
                                 : answers_equal(item, predicted_percent, by[i], gold_percent, tolerance);
      }
      if (!matched) return false;
    }
    return true;
  };
  return covered(gold.items, predicted.items, true) && covered(predicted.items, gold.items, false);
}

}  // namespace

bool math_equal(std::string_view predicted, std::string_view gold, MathEqualOptions options) {
  if (predicted.size() > kMaxAnswerLength || gold.size() > kMaxAnswerLength) return false;
  const Normalized p = normalize(predicted), g = normalize(gold);
  if (p.text.empty() || g.text.empty()) return false;
  return answers_equal(parse_answer(p.text), p.percent, parse_answer(g.text), g.percent, options);
}

}  // namespace grpo::rewards
