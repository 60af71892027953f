// The lexer follows @huggingface/jinja's (the reference for chat templates) step by step, so that the
// whitespace the template writes is byte for byte the same: lstrip_blocks and trim_blocks on, a final
// newline dropped, {%- -%} {{- -}} {#- -#} trimming JavaScript's whitespace set.
#include <cstdint>

#include "policy/tokenizer/jinja/ast.h"
#include "policy/tokenizer/jinja/value.h"

namespace grpo::jinja {

void fail_at(const std::string& origin, Pos pos, const std::string& message) {
  throw JinjaError(origin + ":" + std::to_string(pos.line) + ":" + std::to_string(pos.column) + ": " + message);
}

namespace {

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_word(char c) { return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }

struct Preprocessed {
  std::string text;
  std::vector<size_t> origin;  // origin[k]: offset in the template of text[k]
};

Preprocessed preprocess(const std::string& source) {
  size_t n = source.size();
  if (n > 0 && source[n - 1] == '\n') --n;
  // lstrip_blocks: /^[ \t]*({[#%-])/gm -> "$1"
  Preprocessed lstripped;
  for (size_t k = 0; k < n;) {
    const bool line_start = k == 0 || source[k - 1] == '\n' || source[k - 1] == '\r';
    if (line_start) {
      size_t j = k;
      while (j < n && (source[j] == ' ' || source[j] == '\t')) ++j;
      if (j + 1 < n && source[j] == '{' && (source[j + 1] == '#' || source[j + 1] == '%' || source[j + 1] == '-')) k = j;
    }
    const size_t stop = k + 1;
    for (; k < stop; ++k) {
      lstripped.text += source[k];
      lstripped.origin.push_back(k);
    }
  }
  // trim_blocks: /([#%-]})\n/g -> "$1"
  Preprocessed out;
  const std::string& t = lstripped.text;
  for (size_t k = 0; k < t.size(); ++k) {
    if (t[k] == '\n' && k >= 2 && t[k - 1] == '}' && (t[k - 2] == '#' || t[k - 2] == '%' || t[k - 2] == '-')) continue;
    out.text += t[k];
    out.origin.push_back(lstripped.origin[k]);
  }
  // {% generation %} and {% endgeneration %} (assistant-mask markers of TRL-style templates) go, as in
  // the reference: /(\s*){%(-?)\s*(?:end)?generation\s*(-?)%}(\s*)/gs -> (lstrip ? "" : $1) + (rstrip ? "" : $4)
  Preprocessed stripped;
  const std::string& u = out.text;
  const auto skip_space = [&](size_t k) {
    while (size_t w = js_space_at(u, k)) k += w;
    return k;
  };
  for (size_t i = 0; i < u.size();) {
    const size_t open = skip_space(i);
    size_t k = open;
    bool matched = u.compare(k, 2, "{%") == 0;
    bool lstrip = false, rstrip = false;
    if (matched) {
      k += 2;
      lstrip = k < u.size() && u[k] == '-';
      k = skip_space(k + (lstrip ? 1 : 0));
      if (u.compare(k, 3, "end") == 0 && u.compare(k + 3, 10, "generation") == 0) k += 3;
      matched = u.compare(k, 10, "generation") == 0;
      k = skip_space(k + 10);
      rstrip = matched && k < u.size() && u[k] == '-';
      if (rstrip) ++k;
      matched = matched && u.compare(k, 2, "%}") == 0;
    }
    if (!matched) {
      stripped.text += u[i];
      stripped.origin.push_back(out.origin[i]);
      ++i;
      continue;
    }
    const size_t close = k + 2, after = skip_space(close);
    const auto keep = [&](size_t from, size_t to) {
      for (size_t q = from; q < to; ++q) {
        stripped.text += u[q];
        stripped.origin.push_back(out.origin[q]);
      }
    };
    if (!lstrip) keep(i, open);
    if (!rstrip) keep(close, after);
    i = after;
  }
  stripped.origin.push_back(n);  // the end
  return stripped;
}

class Lexer {
 public:
  Lexer(const std::string& source, const std::string& origin) : source_(source), origin_(origin), src_(preprocess(source)) {
    line_starts_.push_back(0);
    for (size_t k = 0; k < source.size(); ++k)
      if (source[k] == '\n') line_starts_.push_back(k + 1);
  }

  std::vector<Token> run() {
    const std::string& s = src_.text;
    while (at_ < s.size()) {
      const bool text_allowed = tokens_.empty() || last() == TokenType::CloseStatement ||
                                last() == TokenType::CloseExpression || last() == TokenType::Comment;
      if (text_allowed) {
        const size_t start = at_;
        while (at_ < s.size() && !(s[at_] == '{' && at_ + 1 < s.size() && (s[at_ + 1] == '%' || s[at_ + 1] == '{' || s[at_ + 1] == '#')))
          ++at_;
        if (at_ > start) {
          push(TokenType::Text, s.substr(start, at_ - start), start);
          continue;
        }
      }
      if (starts("{#")) {
        lex_comment();
        continue;
      }
      if (starts("{%-")) {
        strip_trailing_whitespace();
        push(TokenType::OpenStatement, "{%", at_);
        at_ += 3;
        continue;
      }
      if (starts("{{-")) {
        strip_trailing_whitespace();
        push(TokenType::OpenExpression, "{{", at_);
        curly_depth_ = 0;
        at_ += 3;
        continue;
      }
      while (size_t w = js_space_at(s, at_)) at_ += w;
      if (at_ >= s.size()) break;
      if (starts("-%}")) {
        push(TokenType::CloseStatement, "%}", at_);
        at_ += 3;
        skip_leading_whitespace();
        continue;
      }
      if (starts("-}}")) {
        push(TokenType::CloseExpression, "}}", at_);
        at_ += 3;
        skip_leading_whitespace();
        continue;
      }
      const char c = s[at_];
      if ((c == '-' || c == '+') && lex_sign(c)) continue;
      if (lex_operator()) continue;
      if (c == '\'' || c == '"') {
        const size_t start = at_++;
        std::string value = consume_string(c, start);
        push(TokenType::String, std::move(value), start);
        continue;
      }
      if (is_digit(c)) {
        const size_t start = at_;
        std::string number = consume_digits();
        if ((tokens_.empty() || last() != TokenType::Dot) && at_ + 1 < s.size() && s[at_] == '.' && is_digit(s[at_ + 1])) {
          ++at_;
          number += "." + consume_digits();
        }
        push(TokenType::Number, std::move(number), start);
        continue;
      }
      if (is_word(c)) {
        const size_t start = at_;
        while (at_ < s.size() && is_word(s[at_])) ++at_;
        push(TokenType::Identifier, s.substr(start, at_ - start), start);
        continue;
      }
      fail_at(origin_, pos(at_), std::string("unexpected character '") + c + "'");
    }
    return std::move(tokens_);
  }

 private:
  TokenType last() const { return tokens_.back().type; }
  bool starts(const char* text) const { return src_.text.compare(at_, std::char_traits<char>::length(text), text) == 0; }

  Pos pos(size_t at) const {
    const size_t offset = src_.origin[std::min(at, src_.origin.size() - 1)];
    size_t line = 0;
    size_t lo = 0, hi = line_starts_.size();
    while (hi - lo > 1) {
      const size_t mid = (lo + hi) / 2;
      if (line_starts_[mid] <= offset) lo = mid;
      else hi = mid;
    }
    line = lo;
    int column = 1;
    for (size_t k = line_starts_[line]; k < offset && k < source_.size(); ++k)
      if ((static_cast<unsigned char>(source_[k]) & 0xc0) != 0x80) ++column;
    return {static_cast<int>(line + 1), column};
  }

  void push(TokenType type, std::string value, size_t at) { tokens_.push_back({type, std::move(value), pos(at)}); }

  void strip_trailing_whitespace() {
    if (tokens_.empty() || last() != TokenType::Text) return;
    std::string& text = tokens_.back().value;
    while (size_t w = js_space_before(text, text.size())) text.resize(text.size() - w);
    if (text.empty()) tokens_.pop_back();
  }

  void skip_leading_whitespace() {
    while (size_t w = js_space_at(src_.text, at_)) at_ += w;
  }

  void lex_comment() {
    const std::string& s = src_.text;
    const size_t start = at_;
    at_ += 2;
    const bool strip_before = at_ < s.size() && s[at_] == '-';
    if (strip_before) ++at_;
    const size_t close = s.find("#}", at_);
    if (close == std::string::npos) fail_at(origin_, pos(start), "unclosed comment: {# without #}");
    std::string comment = s.substr(at_, close - at_);
    const bool strip_after = !comment.empty() && comment.back() == '-';
    if (strip_after) comment.pop_back();
    if (strip_before) strip_trailing_whitespace();
    push(TokenType::Comment, std::move(comment), start);
    at_ = close + 2;
    if (strip_after) skip_leading_whitespace();
  }

  // A sign after an operand is the binary operator; elsewhere a negative number or a unary sign.
  bool lex_sign(char c) {
    if (tokens_.empty() || last() == TokenType::Text) fail_at(origin_, pos(at_), std::string("unexpected character '") + c + "'");
    switch (last()) {
      case TokenType::Identifier:
      case TokenType::Number:
      case TokenType::String:
      case TokenType::CloseParen:
      case TokenType::CloseSquare:
        return false;
      default:
        break;
    }
    const size_t start = at_++;
    std::string number = consume_digits();
    if (!number.empty() && at_ + 1 < src_.text.size() && src_.text[at_] == '.' && is_digit(src_.text[at_ + 1])) {
      ++at_;
      number += "." + consume_digits();
    }
    if (number.empty()) push(TokenType::Unary, std::string(1, c), start);
    else push(TokenType::Number, std::string(1, c) + number, start);
    return true;
  }

  bool lex_operator() {
    static const std::pair<const char*, TokenType> kTable[] = {
        {"{%", TokenType::OpenStatement}, {"%}", TokenType::CloseStatement}, {"{{", TokenType::OpenExpression},
        {"}}", TokenType::CloseExpression}, {"(", TokenType::OpenParen}, {")", TokenType::CloseParen},
        {"{", TokenType::OpenCurly}, {"}", TokenType::CloseCurly}, {"[", TokenType::OpenSquare},
        {"]", TokenType::CloseSquare}, {",", TokenType::Comma}, {".", TokenType::Dot}, {":", TokenType::Colon},
        {"|", TokenType::Pipe}, {"<=", TokenType::Comparison}, {">=", TokenType::Comparison},
        {"==", TokenType::Comparison}, {"!=", TokenType::Comparison}, {"<", TokenType::Comparison},
        {">", TokenType::Comparison}, {"+", TokenType::Additive}, {"-", TokenType::Additive},
        {"~", TokenType::Additive}, {"**", TokenType::Power}, {"*", TokenType::Multiplicative},
        {"//", TokenType::Multiplicative}, {"/", TokenType::Multiplicative}, {"%", TokenType::Multiplicative},
        {"=", TokenType::Equals}};
    for (const auto& [text, type] : kTable) {
      if (type == TokenType::CloseExpression && curly_depth_ > 0) continue;
      if (!starts(text)) continue;
      push(type, text, at_);
      if (type == TokenType::OpenExpression) curly_depth_ = 0;
      if (type == TokenType::OpenCurly) ++curly_depth_;
      if (type == TokenType::CloseCurly) --curly_depth_;
      at_ += std::char_traits<char>::length(text);
      return true;
    }
    return false;
  }

  std::string consume_digits() {
    const size_t start = at_;
    while (at_ < src_.text.size() && is_digit(src_.text[at_])) ++at_;
    return src_.text.substr(start, at_ - start);
  }

  std::string consume_string(char quote, size_t start) {
    const std::string& s = src_.text;
    std::string out;
    while (true) {
      if (at_ >= s.size()) fail_at(origin_, pos(start), "unterminated string literal");
      const char c = s[at_];
      if (c == quote) break;
      if (c != '\\') {
        out += c;
        ++at_;
        continue;
      }
      if (++at_ >= s.size()) fail_at(origin_, pos(start), "unterminated string literal");
      const char e = s[at_++];
      switch (e) {
        case 'n': out += '\n'; break;
        case 't': out += '\t'; break;
        case 'r': out += '\r'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'v': out += '\v'; break;
        case '\'': out += '\''; break;
        case '"': out += '"'; break;
        case '\\': out += '\\'; break;
        case 'x':
        case 'u': {
          const size_t length = e == 'x' ? 2 : 4;
          const std::string hex = s.substr(at_, length);
          if (hex.size() != length || hex.find_first_not_of("0123456789abcdefABCDEF") != std::string::npos)
            fail_at(origin_, pos(at_ - 2), "invalid escape \\" + std::string(1, e) + hex);
          const unsigned cp = static_cast<unsigned>(std::stoul(hex, nullptr, 16));
          if (cp < 0x80) {
            out += static_cast<char>(cp);
          } else if (cp < 0x800) {
            out += static_cast<char>(0xc0 | (cp >> 6));
            out += static_cast<char>(0x80 | (cp & 0x3f));
          } else {
            out += static_cast<char>(0xe0 | (cp >> 12));
            out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
            out += static_cast<char>(0x80 | (cp & 0x3f));
          }
          at_ += length;
          break;
        }
        default:
          fail_at(origin_, pos(at_ - 2), std::string("unknown escape \\") + e + " in a string literal");
      }
    }
    ++at_;  // the closing quote
    return out;
  }

  const std::string& source_;
  const std::string& origin_;
  Preprocessed src_;
  std::vector<size_t> line_starts_;
  std::vector<Token> tokens_;
  size_t at_ = 0;
  int curly_depth_ = 0;
};

}  // namespace

std::vector<Token> tokenize(const std::string& source, const std::string& origin) { return Lexer(source, origin).run(); }

}  // namespace grpo::jinja
