// Recursive descent over the tokens, with @huggingface/jinja's grammar and precedence (loosest first):
// a if c else b, or, and, not, comparisons and in / not in, + - ~, * / // %, **, is, |filter, unary
// sign, calls / member access / literals. Unknown filters and tests and tags outside the subset are
// errors here, before anything renders, naming the construct and its line:column.
#include <set>

#include "policy/tokenizer/jinja/ast.h"

namespace grpo::jinja {

namespace {

const std::set<std::string>& known_filters() {
  static const std::set<std::string> names = {
      "abs", "bool", "capitalize", "default", "dictsort", "first", "float", "get", "indent", "int", "items", "join",
      "keys", "last", "length", "list", "lower", "map", "rejectattr", "replace", "reverse", "safe", "selectattr", "sort",
      "string", "title", "tojson", "trim", "unique", "upper", "values"};
  return names;
}

const std::set<std::string>& known_tests() {
  static const std::set<std::string> names = {"boolean", "callable", "defined", "eq", "equalto", "even", "false",
                                              "integer", "iterable", "lower", "mapping", "none", "number", "odd",
                                              "sequence", "string", "true", "undefined", "upper"};
  return names;
}

std::string join_names(const std::set<std::string>& names) {
  std::string out;
  for (const std::string& n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}

const char* token_name(TokenType t) {
  switch (t) {
    case TokenType::Text: return "text";
    case TokenType::Number: return "a number";
    case TokenType::String: return "a string";
    case TokenType::Identifier: return "a name";
    case TokenType::Equals: return "'='";
    case TokenType::OpenParen: return "'('";
    case TokenType::CloseParen: return "')'";
    case TokenType::OpenStatement: return "'{%'";
    case TokenType::CloseStatement: return "'%}'";
    case TokenType::OpenExpression: return "'{{'";
    case TokenType::CloseExpression: return "'}}'";
    case TokenType::OpenSquare: return "'['";
    case TokenType::CloseSquare: return "']'";
    case TokenType::OpenCurly: return "'{'";
    case TokenType::CloseCurly: return "'}'";
    case TokenType::Comma: return "','";
    case TokenType::Dot: return "'.'";
    case TokenType::Colon: return "':'";
    case TokenType::Pipe: return "'|'";
    case TokenType::Additive:
    case TokenType::Multiplicative:
    case TokenType::Power:
    case TokenType::Comparison:
    case TokenType::Unary: return "an operator";
    case TokenType::Comment: return "a comment";
  }
  return "?";
}

class Parser {
 public:
  Parser(const std::vector<Token>& tokens, const std::string& origin) : t_(tokens), origin_(origin) {}

  std::vector<NodePtr> program() {
    std::vector<NodePtr> body;
    while (at_ < t_.size()) body.push_back(any());
    return body;
  }

 private:
  NodePtr node(NodeKind kind, Pos pos) {
    auto n = std::make_unique<Node>();
    n->kind = kind;
    n->pos = pos;
    return n;
  }

  bool done() const { return at_ >= t_.size(); }
  Pos here() const { return done() ? (t_.empty() ? Pos{1, 1} : t_.back().pos) : t_[at_].pos; }
  bool is(TokenType type, size_t ahead = 0) const { return at_ + ahead < t_.size() && t_[at_ + ahead].type == type; }
  bool is_name(const char* name, size_t ahead = 0) const {
    return is(TokenType::Identifier, ahead) && t_[at_ + ahead].value == name;
  }
  bool is_tag(std::initializer_list<const char*> names) const {
    if (!is(TokenType::OpenStatement) || !is(TokenType::Identifier, 1)) return false;
    for (const char* n : names)
      if (t_[at_ + 1].value == n) return true;
    return false;
  }

  [[noreturn]] void fail(Pos pos, const std::string& message) const { fail_at(origin_, pos, message); }

  const Token& expect(TokenType type, const char* what) {
    if (done()) fail(here(), std::string("expected ") + what + " but the template ended");
    if (t_[at_].type != type)
      fail(t_[at_].pos, std::string("expected ") + what + ", found " + describe(t_[at_]));
    return t_[at_++];
  }

  static std::string describe(const Token& t) {
    if (t.type == TokenType::Identifier || t.type == TokenType::Number) return "'" + t.value + "'";
    if (t.type == TokenType::Additive || t.type == TokenType::Multiplicative || t.type == TokenType::Comparison ||
        t.type == TokenType::Power || t.type == TokenType::Unary)
      return "'" + t.value + "'";
    return token_name(t.type);
  }

  // Body statements until one of the closing tags; an unclosed block names where it opened.
  std::vector<NodePtr> block_until(std::initializer_list<const char*> ends, const char* opener, Pos opened) {
    std::vector<NodePtr> body;
    while (!is_tag(ends)) {
      if (done()) {
        std::string expected;
        for (const char* e : ends) expected += std::string(expected.empty() ? "" : " or ") + "{% " + e + " %}";
        fail(opened, std::string("unclosed {% ") + opener + " %}: the template ends before " + expected);
      }
      body.push_back(any());
    }
    return body;
  }

  void end_tag(const char* name) {
    expect(TokenType::OpenStatement, "'{%'");
    const Token& t = expect(TokenType::Identifier, name);
    if (t.value != name) fail(t.pos, std::string("expected ") + name + ", found '" + t.value + "'");
    expect(TokenType::CloseStatement, "'%}'");
  }

  NodePtr any() {
    const Token& t = t_[at_];
    switch (t.type) {
      case TokenType::Comment: {
        ++at_;
        return node(NodeKind::Comment, t.pos);
      }
      case TokenType::Text: {
        auto n = node(NodeKind::Text, t.pos);
        n->text = t.value;
        ++at_;
        return n;
      }
      case TokenType::OpenStatement:
        return statement();
      case TokenType::OpenExpression: {
        ++at_;
        NodePtr e = expression();
        expect(TokenType::CloseExpression, "'}}'");
        return e;
      }
      default:
        fail(t.pos, "unexpected " + describe(t));
    }
  }

  NodePtr statement() {
    const Pos open = t_[at_].pos;
    ++at_;
    if (!is(TokenType::Identifier)) fail(here(), "expected a tag name after '{%'" + (done() ? std::string() : ", found " + describe(t_[at_])));
    const Token& name = t_[at_++];
    const std::string& n = name.value;
    if (n == "set") return set_statement(open);
    if (n == "if") {
      NodePtr s = if_statement(open);
      end_tag("endif");
      return s;
    }
    if (n == "for") {
      NodePtr s = for_statement(open);
      end_tag("endfor");
      return s;
    }
    if (n == "macro") {
      NodePtr s = macro_statement(open);
      end_tag("endmacro");
      return s;
    }
    if (n == "break" || n == "continue") {
      expect(TokenType::CloseStatement, "'%}'");
      return node(n == "break" ? NodeKind::Break : NodeKind::Continue, open);
    }
    static const std::set<std::string> kEnds = {"endif", "endfor", "endmacro", "endset", "elif", "else"};
    if (kEnds.count(n)) fail(name.pos, "unexpected {% " + n + " %} (no open block it could close or continue)");
    static const std::set<std::string> kJinjaTags = {"block", "extends", "include", "import", "from", "with",
                                                     "call", "filter", "raw", "autoescape", "do", "trans",
                                                     "generation", "endgeneration"};
    const std::string supported = "set, if/elif/else, for/else, macro, break, continue";
    if (kJinjaTags.count(n))
      fail(name.pos, "unsupported tag {% " + n + " %} (chat templates may use " + supported + ")");
    fail(name.pos, "unknown tag {% " + n + " %} (chat templates may use " + supported + ")");
  }

  NodePtr set_statement(Pos open) {
    auto s = node(NodeKind::Set, open);
    s->a = expression_sequence(false);
    if (is(TokenType::Equals)) {
      ++at_;
      s->b = expression_sequence(false);
    } else {
      expect(TokenType::CloseStatement, "'=' or '%}'");
      s->body = block_until({"endset"}, "set", open);
      expect(TokenType::OpenStatement, "'{%'");
      ++at_;  // endset
    }
    expect(TokenType::CloseStatement, "'%}'");
    return s;
  }

  NodePtr if_statement(Pos open) {
    auto s = node(NodeKind::If, open);
    s->a = expression();
    expect(TokenType::CloseStatement, "'%}'");
    s->body = block_until({"elif", "else", "endif"}, "if", open);
    if (is_tag({"elif"})) {
      const Pos elif = t_[at_].pos;
      at_ += 2;
      s->alt.push_back(if_statement(elif));
    } else if (is_tag({"else"})) {
      at_ += 2;
      expect(TokenType::CloseStatement, "'%}'");
      s->alt = block_until({"endif"}, "if", open);
    }
    return s;
  }

  NodePtr for_statement(Pos open) {
    auto s = node(NodeKind::For, open);
    s->a = expression_sequence(true);
    if (s->a->kind != NodeKind::Identifier && s->a->kind != NodeKind::Tuple)
      fail(s->a->pos, "expected a name or names to loop over");
    if (!is_name("in")) fail(here(), "expected 'in' after the loop variable");
    ++at_;
    s->b = expression();
    expect(TokenType::CloseStatement, "'%}'");
    s->body = block_until({"endfor", "else"}, "for", open);
    if (is_tag({"else"})) {
      at_ += 2;
      expect(TokenType::CloseStatement, "'%}'");
      s->alt = block_until({"endfor"}, "for", open);
    }
    return s;
  }

  NodePtr macro_statement(Pos open) {
    auto s = node(NodeKind::Macro, open);
    NodePtr name = primary();
    if (name->kind != NodeKind::Identifier) fail(name->pos, "expected the macro's name");
    s->text = name->text;
    s->list = arguments(true);
    expect(TokenType::CloseStatement, "'%}'");
    s->body = block_until({"endmacro"}, "macro", open);
    return s;
  }

  NodePtr expression_sequence(bool primary_only) {
    NodePtr first = primary_only ? primary() : expression();
    if (!is(TokenType::Comma)) return first;
    auto tuple = node(NodeKind::Tuple, first->pos);
    tuple->list.push_back(std::move(first));
    while (is(TokenType::Comma)) {
      ++at_;
      tuple->list.push_back(primary_only ? primary() : expression());
    }
    return tuple;
  }

  NodePtr expression() {
    NodePtr a = logical_or();
    if (is_name("if")) {
      const Pos pos = t_[at_++].pos;
      NodePtr test = logical_or();
      if (is_name("else")) {
        ++at_;
        auto t = node(NodeKind::Ternary, pos);
        t->a = std::move(test);
        t->b = std::move(a);
        t->c = expression();
        return t;
      }
      auto s = node(NodeKind::Select, pos);
      s->a = std::move(a);
      s->b = std::move(test);
      return s;
    }
    return a;
  }

  NodePtr binary(const Token& op, NodePtr left, NodePtr right, const std::string& text) {
    auto b = node(NodeKind::Binary, op.pos);
    b->text = text;
    b->a = std::move(left);
    b->b = std::move(right);
    return b;
  }

  NodePtr logical_or() {
    NodePtr left = logical_and();
    while (is_name("or")) {
      const Token& op = t_[at_++];
      left = binary(op, std::move(left), logical_and(), "or");
    }
    return left;
  }

  NodePtr logical_and() {
    NodePtr left = logical_not();
    while (is_name("and")) {
      const Token& op = t_[at_++];
      left = binary(op, std::move(left), logical_not(), "and");
    }
    return left;
  }

  NodePtr logical_not() {
    if (is_name("not")) {
      auto u = node(NodeKind::Unary, t_[at_++].pos);
      u->text = "not";
      u->a = logical_not();
      return u;
    }
    return comparison();
  }

  NodePtr comparison() {
    NodePtr left = additive();
    while (true) {
      std::string op;
      const Token* tok = nullptr;
      if (is_name("not") && is_name("in", 1)) {
        tok = &t_[at_];
        op = "not in";
        at_ += 2;
      } else if (is_name("in") || is(TokenType::Comparison)) {
        tok = &t_[at_++];
        op = tok->value;
      } else {
        break;
      }
      left = binary(*tok, std::move(left), additive(), op);
    }
    return left;
  }

  NodePtr additive() {
    NodePtr left = multiplicative();
    while (is(TokenType::Additive)) {
      const Token& op = t_[at_++];
      left = binary(op, std::move(left), multiplicative(), op.value);
    }
    return left;
  }

  NodePtr multiplicative() {
    NodePtr left = power();
    while (is(TokenType::Multiplicative)) {
      const Token& op = t_[at_++];
      left = binary(op, std::move(left), power(), op.value);
    }
    return left;
  }

  NodePtr power() {
    NodePtr left = test();
    while (is(TokenType::Power)) {
      const Token& op = t_[at_++];
      left = binary(op, std::move(left), test(), op.value);
    }
    return left;
  }

  NodePtr test() {
    NodePtr operand = filter();
    while (is_name("is")) {
      ++at_;
      const bool negate = is_name("not");
      if (negate) ++at_;
      if (!is(TokenType::Identifier)) fail(here(), "expected a test name after 'is'");
      const Token& name = t_[at_++];
      if (!known_tests().count(name.value))
        fail(name.pos, "unknown test '" + name.value + "' (supported tests: " + join_names(known_tests()) + ")");
      auto t = node(NodeKind::Test, name.pos);
      t->text = name.value;
      t->flag = negate;
      t->a = std::move(operand);
      operand = std::move(t);
    }
    return operand;
  }

  NodePtr filter() {
    NodePtr operand = unary_sign();
    while (is(TokenType::Pipe)) {
      ++at_;
      if (!is(TokenType::Identifier)) fail(here(), "expected a filter name after '|'");
      const Token& name = t_[at_];
      if (!known_filters().count(name.value))
        fail(name.pos, "unknown filter '" + name.value + "' (supported filters: " + join_names(known_filters()) + ")");
      NodePtr f = primary();
      if (is(TokenType::OpenParen)) f = call(std::move(f));
      if ((name.value == "selectattr" || name.value == "rejectattr") && f->kind == NodeKind::Call) {
        for (const NodePtr& arg : f->list)
          if (arg->kind != NodeKind::String) fail(arg->pos, "the arguments of " + name.value + " must be string literals");
      }
      auto n = node(NodeKind::Filter, name.pos);
      n->a = std::move(operand);
      n->b = std::move(f);
      operand = std::move(n);
    }
    return operand;
  }

  NodePtr unary_sign() {
    if (!done() && (t_[at_].type == TokenType::Unary || t_[at_].type == TokenType::Additive) &&
        (t_[at_].value == "-" || t_[at_].value == "+")) {
      auto u = node(NodeKind::Unary, t_[at_].pos);
      u->text = t_[at_++].value;
      u->a = unary_sign();
      return u;
    }
    NodePtr member = member_access(primary());
    if (is(TokenType::OpenParen)) return call(std::move(member));
    return member;
  }

  NodePtr call(NodePtr callee) {
    auto c = node(NodeKind::Call, callee->pos);
    c->a = std::move(callee);
    c->list = arguments(false);
    NodePtr e = member_access(std::move(c));
    if (is(TokenType::OpenParen)) return call(std::move(e));
    return e;
  }

  std::vector<NodePtr> arguments(bool parameters) {
    expect(TokenType::OpenParen, "'('");
    std::vector<NodePtr> args;
    bool saw_keyword = false;
    while (!is(TokenType::CloseParen)) {
      if (done()) fail(here(), "expected ')' but the template ended");
      if (is(TokenType::Power) || (is(TokenType::Multiplicative) && t_[at_].value == "*"))
        fail(t_[at_].pos, "argument unpacking (* and **) is not supported");
      NodePtr arg = expression();
      if (is(TokenType::Equals)) {
        ++at_;
        if (arg->kind != NodeKind::Identifier) fail(arg->pos, "expected a name before '='");
        auto kw = node(NodeKind::KeywordArgument, arg->pos);
        kw->text = arg->text;
        kw->a = expression();
        arg = std::move(kw);
        saw_keyword = true;
      } else if (saw_keyword) {
        fail(arg->pos, parameters ? "a parameter without default follows one with a default"
                                  : "a positional argument follows a keyword argument");
      }
      if (parameters && arg->kind != NodeKind::Identifier && arg->kind != NodeKind::KeywordArgument)
        fail(arg->pos, "expected a parameter name");
      args.push_back(std::move(arg));
      if (is(TokenType::Comma)) ++at_;
    }
    ++at_;
    return args;
  }

  NodePtr member_access(NodePtr object) {
    while (is(TokenType::Dot) || is(TokenType::OpenSquare)) {
      const Token& op = t_[at_++];
      auto m = node(NodeKind::Member, op.pos);
      m->flag = op.type == TokenType::OpenSquare;
      if (m->flag) {
        m->b = subscript(op.pos);
        expect(TokenType::CloseSquare, "']'");
      } else {
        m->b = primary();
        if (m->b->kind != NodeKind::Identifier && m->b->kind != NodeKind::Int)
          fail(m->b->pos, "expected a name or an integer after '.'");
      }
      m->a = std::move(object);
      object = std::move(m);
    }
    return object;
  }

  // [i] or a slice [start:stop:step] with any part left out.
  NodePtr subscript(Pos open) {
    std::vector<NodePtr> parts;
    bool slice = false;
    while (!is(TokenType::CloseSquare)) {
      if (done()) fail(open, "unclosed '['");
      if (is(TokenType::Colon)) {
        parts.push_back(nullptr);
        ++at_;
        slice = true;
      } else {
        parts.push_back(expression());
        if (is(TokenType::Colon)) {
          ++at_;
          slice = true;
        }
      }
    }
    if (parts.empty()) fail(open, "expected an index or a slice inside '[]'");
    if (!slice) return std::move(parts[0]);
    if (parts.size() > 3) fail(open, "a slice has at most three parts");
    auto s = node(NodeKind::Slice, open);
    parts.resize(3);
    s->a = std::move(parts[0]);
    s->b = std::move(parts[1]);
    s->c = std::move(parts[2]);
    return s;
  }

  NodePtr primary() {
    if (done()) fail(here(), "expected an expression but the template ended");
    const Token& t = t_[at_++];
    switch (t.type) {
      case TokenType::Number: {
        if (t.value.find('.') != std::string::npos) {
          auto n = node(NodeKind::Float, t.pos);
          n->f = std::stod(t.value);
          return n;
        }
        auto n = node(NodeKind::Int, t.pos);
        n->i = std::stoll(t.value);
        return n;
      }
      case TokenType::String: {
        auto n = node(NodeKind::String, t.pos);
        n->text = t.value;
        while (is(TokenType::String)) n->text += t_[at_++].value;
        return n;
      }
      case TokenType::Identifier: {
        auto n = node(NodeKind::Identifier, t.pos);
        n->text = t.value;
        return n;
      }
      case TokenType::OpenParen: {
        NodePtr e = expression_sequence(false);
        expect(TokenType::CloseParen, "')'");
        return e;
      }
      case TokenType::OpenSquare: {
        auto n = node(NodeKind::Array, t.pos);
        while (!is(TokenType::CloseSquare)) {
          if (done()) fail(t.pos, "unclosed '['");
          n->list.push_back(expression());
          if (is(TokenType::Comma)) ++at_;
        }
        ++at_;
        return n;
      }
      case TokenType::OpenCurly: {
        auto n = node(NodeKind::Object, t.pos);
        while (!is(TokenType::CloseCurly)) {
          if (done()) fail(t.pos, "unclosed '{'");
          NodePtr key = expression();
          expect(TokenType::Colon, "':' between key and value");
          NodePtr value = expression();
          n->pairs.emplace_back(std::move(key), std::move(value));
          if (is(TokenType::Comma)) ++at_;
        }
        ++at_;
        return n;
      }
      default:
        fail(t.pos, "unexpected " + describe(t));
    }
  }

  const std::vector<Token>& t_;
  const std::string& origin_;
  size_t at_ = 0;
};

}  // namespace

std::vector<NodePtr> parse(const std::vector<Token>& tokens, const std::string& origin) {
  return Parser(tokens, origin).program();
}

}  // namespace grpo::jinja
