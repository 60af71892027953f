#pragma once
// The values a chat template computes with: undefined, none, bool, int, float, string, list, dict,
// namespace and function (macros and built-ins). Lists, dicts and namespaces are shared by reference,
// as in Jinja (a namespace attribute set inside a loop is seen after it). Dicts keep insertion order,
// which tojson reproduces.
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace grpo::jinja {

struct Value;
struct Env;
using List = std::vector<Value>;

struct Dict {
  std::vector<std::pair<std::string, Value>> items;
  const Value* find(const std::string& key) const;
  void set(const std::string& key, Value value);
};

// Positional and keyword arguments of a call, in the order written.
struct Args {
  std::vector<Value> positional;
  std::vector<std::pair<std::string, Value>> keywords;
  const Value* keyword(const std::string& name) const;
};

// A callable: macros evaluate their body in a scope below the caller's (Jinja's dynamic scoping).
using Function = std::function<Value(const Args&, Env& caller)>;

struct Value {
  enum class Kind { Undefined, None, Bool, Int, Float, String, List, Dict, Namespace, Function };
  Kind kind = Kind::Undefined;
  bool b = false;
  int64_t i = 0;
  double f = 0;
  std::string s;
  std::shared_ptr<List> list;
  std::shared_ptr<Dict> dict;  // Dict and Namespace
  std::shared_ptr<Function> fn;

  static Value undefined() { return Value(); }
  static Value none();
  static Value boolean(bool v);
  static Value integer(int64_t v);
  static Value number(double v);
  static Value string(std::string v);
  static Value make_list(List items = {});
  static Value make_dict();
  static Value make_namespace();
  static Value function(Function f);
  // JSON as the reference converts it: integral numbers become ints, objects keep their key order.
  static Value from_json(const nlohmann::ordered_json& j);

  bool is(Kind k) const { return kind == k; }
  bool is_numeric() const { return kind == Kind::Int || kind == Kind::Float; }
  bool is_mapping() const { return kind == Kind::Dict || kind == Kind::Namespace; }
  double as_double() const { return kind == Kind::Float ? f : kind == Kind::Bool ? (b ? 1 : 0) : static_cast<double>(i); }
  // Python truthiness (empty string, list, dict, 0, none and undefined are false).
  bool truthy() const;
  // What {{ value }} writes: floats with a ".0" when integral, booleans as true/false, lists and dicts as
  // JSON with ", " and ": ".
  std::string to_output() const;
  const char* type_name() const;
};

// Byte length of the JavaScript whitespace character (/\s/, what trim() removes) at s[i], or ending
// s[0, end); 0 if there is none.
size_t js_space_at(const std::string& s, size_t i);
size_t js_space_before(const std::string& s, size_t end);

// JavaScript's Number.prototype.toString (shortest round-trip digits), which the reference uses.
std::string js_number(double v);
// JSON text as the reference's tojson writes it (indent < 0: single line with ", " and ": ").
struct JsonStyle {
  int indent = -1;
  bool ensure_ascii = false;
  bool sort_keys = false;
  std::string item_separator, key_separator;  // empty: the defaults for indent
  bool undefined_as_null = true;
};
std::string to_json(const Value& v, const JsonStyle& style, int depth = 0);
std::string json_string(const std::string& s, bool ensure_ascii);

}  // namespace grpo::jinja
