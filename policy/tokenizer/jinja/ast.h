#pragma once
// Tokens and the syntax tree of a chat template, with the line:column of each in the template text.
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "policy/tokenizer/tokenizer_error.h"

namespace grpo::jinja {

struct Pos {
  int line = 0, column = 0;  // 1-based; column counts characters
};

// Every error of a template: it does not parse, uses something outside the subset, or fails while
// rendering (raise_exception, a type error). The message starts with "origin:line:column:".
class JinjaError : public TokenizerError {
 public:
  using TokenizerError::TokenizerError;
};

[[noreturn]] void fail_at(const std::string& origin, Pos pos, const std::string& message);

enum class TokenType {
  Text, Number, String, Identifier, Equals, OpenParen, CloseParen, OpenStatement, CloseStatement, OpenExpression,
  CloseExpression, OpenSquare, CloseSquare, OpenCurly, CloseCurly, Comma, Dot, Colon, Pipe, Additive, Multiplicative,
  Power, Comparison, Unary, Comment
};

struct Token {
  TokenType type;
  std::string value;
  Pos pos;
};

// The reference's preprocessing (a final newline dropped, lstrip_blocks and trim_blocks), then tokens.
std::vector<Token> tokenize(const std::string& source, const std::string& origin);

enum class NodeKind {
  Text, String, Int, Float, Identifier, Array, Tuple, Object, Member, Slice, Call, KeywordArgument, Unary, Binary,
  Filter, Test, Select, Ternary, If, For, Set, Macro, Break, Continue, Comment
};

struct Node;
using NodePtr = std::unique_ptr<Node>;

// One node type for statements and expressions. Field use by kind:
//   Member: a object, b property, flag computed ([...]) | Slice: a start, b stop, c step (each may be null)
//   Call: a callee, list arguments | KeywordArgument: text name, a value | Unary/Binary: text operator, a, b
//   Filter: a operand, b filter (Identifier or Call) | Test: a operand, text test name, flag negated
//   Select (x if c): a value, b condition | Ternary: a condition, b then, c else
//   If: a test, body, alt | For: a target, b iterable, body, alt (the else block)
//   Set: a target, b value or null (then body) | Macro: text name, list parameters, body
//   Array/Tuple: list | Object: pairs | String/Text/Identifier: text | Int: i | Float: f
struct Node {
  NodeKind kind;
  Pos pos;
  std::string text;
  int64_t i = 0;
  double f = 0;
  bool flag = false;
  NodePtr a, b, c;
  std::vector<NodePtr> list, body, alt;
  std::vector<std::pair<NodePtr, NodePtr>> pairs;
};

std::vector<NodePtr> parse(const std::vector<Token>& tokens, const std::string& origin);

}  // namespace grpo::jinja
