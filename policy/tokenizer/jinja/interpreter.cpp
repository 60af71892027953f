// The evaluator: walks the syntax tree with @huggingface/jinja's semantics (its truthiness, its ==, its
// string methods, its tojson), so that a chat template renders byte for byte as in transformers.js.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <unordered_map>

#include "policy/tokenizer/jinja/jinja.h"

namespace grpo::jinja {

// A scope: for loops and macro calls open one below the current; {% set %} writes the current one.
struct Env {
  Env* parent = nullptr;
  std::unordered_map<std::string, Value> vars;
  const Value* lookup(const std::string& name) const {
    for (const Env* e = this; e; e = e->parent) {
      auto it = e->vars.find(name);
      if (it != e->vars.end()) return &it->second;
    }
    return nullptr;
  }
  void set(const std::string& name, Value v) { vars[name] = std::move(v); }
};

namespace {

using Kind = Value::Kind;

// An error inside a built-in function; the call site adds its position.
struct EvalError {
  std::string message;
};
struct BreakSignal {};
struct ContinueSignal {};

[[noreturn]] void eval_fail(const std::string& message) { throw EvalError{message}; }

// ---- strings (UTF-8 inside, JavaScript's view where it shows) ----

std::vector<std::string> code_points(const std::string& s) {
  std::vector<std::string> out;
  for (size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    size_t length = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 1;
    if (i + length > s.size()) length = 1;
    out.push_back(s.substr(i, length));
    i += length;
  }
  return out;
}

// String length as JavaScript counts it (UTF-16 code units).
int64_t js_length(const std::string& s) {
  int64_t n = 0;
  for (const std::string& cp : code_points(s)) n += cp.size() == 4 ? 2 : 1;
  return n;
}

std::string js_trim_start(const std::string& s) {
  size_t i = 0;
  while (size_t w = js_space_at(s, i)) i += w;
  return s.substr(i);
}
std::string js_trim_end(const std::string& s) {
  size_t end = s.size();
  while (size_t w = js_space_before(s, end)) end -= w;
  return s.substr(0, end);
}
std::string js_trim(const std::string& s) { return js_trim_end(js_trim_start(s)); }

bool ascii_word(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
char ascii_upper(char c) { return c >= 'a' && c <= 'z' ? static_cast<char>(c - 32) : c; }
char ascii_lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c; }
std::string upper(std::string s) {
  for (char& c : s) c = ascii_upper(c);
  return s;
}
std::string lower(std::string s) {
  for (char& c : s) c = ascii_lower(c);
  return s;
}
std::string title(std::string s) {  // /\b\w/g -> upper case
  for (size_t i = 0; i < s.size(); ++i)
    if (ascii_word(s[i]) && (i == 0 || !ascii_word(s[i - 1]))) s[i] = ascii_upper(s[i]);
  return s;
}

bool starts_with(const std::string& s, const std::string& p) { return s.compare(0, p.size(), p) == 0; }
bool ends_with(const std::string& s, const std::string& p) {
  return s.size() >= p.size() && s.compare(s.size() - p.size(), p.size(), p) == 0;
}

std::string replace_all(const std::string& s, const std::string& from, const std::string& to, int64_t count) {
  if (count == 0) return s;
  int64_t remaining = count < 0 ? INT64_MAX : count;
  std::string out;
  if (from.empty()) {  // matches before every character and at the end
    for (const std::string& cp : code_points(s)) {
      if (remaining > 0) out += to, --remaining;
      out += cp;
    }
    if (remaining > 0) out += to;
    return out;
  }
  size_t at = 0;
  while (true) {
    const size_t hit = remaining > 0 ? s.find(from, at) : std::string::npos;
    if (hit == std::string::npos) break;
    out.append(s, at, hit - at);
    out += to;
    at = hit + from.size();
    --remaining;
  }
  out.append(s, at, std::string::npos);
  return out;
}

// JavaScript's String(value) of a raw value (what ~ and + on strings write).
std::string raw_string(const Value& v) {
  switch (v.kind) {
    case Kind::Int: return std::to_string(v.i);
    case Kind::Float: return js_number(v.f);
    case Kind::Bool: return v.b ? "true" : "false";
    case Kind::String: return v.s;
    case Kind::None: return "null";
    case Kind::Undefined: return "undefined";
    case Kind::List: {  // Array.prototype.toString: the elements' own toString, joined by ","
      std::string out;
      for (size_t k = 0; k < v.list->size(); ++k) {
        const Value& e = (*v.list)[k];
        out += k ? "," : "";
        out += e.kind == Kind::None ? "null" : e.kind == Kind::Undefined ? "undefined" : e.to_output();
      }
      return out;
    }
    case Kind::Dict:
    case Kind::Namespace: return "[object Map]";
    case Kind::Function: return "<function>";
  }
  return "";
}

// Array.prototype.join's view of a raw value.
std::string join_part(const Value& v) {
  if (v.kind == Kind::None || v.kind == Kind::Undefined) return "";
  return raw_string(v);
}

// ---- comparisons ----

bool nullish(const Value& v) { return v.kind == Kind::None || v.kind == Kind::Undefined; }
bool numeric_like(const Value& v) { return v.kind == Kind::Int || v.kind == Kind::Float || v.kind == Kind::Bool; }

// JavaScript's Number(string): trimmed decimal, "" is 0, anything else NaN.
double js_to_number(const std::string& s) {
  const std::string t = js_trim(s);
  if (t.empty()) return 0;
  char* end = nullptr;
  const double d = std::strtod(t.c_str(), &end);
  if (end != t.c_str() + t.size() || t.find_first_of("xXnN") != std::string::npos) return NAN;
  return d;
}

// a.value == b.value in JavaScript (the reference's ==).
bool loose_equal(const Value& a, const Value& b) {
  if (nullish(a) || nullish(b)) return nullish(a) && nullish(b);
  if (numeric_like(a) && numeric_like(b)) return a.as_double() == b.as_double();
  if (a.kind == Kind::String && b.kind == Kind::String) return a.s == b.s;
  if (a.kind == Kind::String && numeric_like(b)) return js_to_number(a.s) == b.as_double();
  if (b.kind == Kind::String && numeric_like(a)) return js_to_number(b.s) == a.as_double();
  if (a.kind != b.kind) return false;
  if (a.kind == Kind::List) return a.list == b.list;
  if (a.kind == Kind::Dict || a.kind == Kind::Namespace) return a.dict == b.dict;
  if (a.kind == Kind::Function) return a.fn == b.fn;
  return false;
}

// a.value === b.value in JavaScript (list membership, equalto).
bool strict_equal(const Value& a, const Value& b) {
  if (a.is_numeric() && b.is_numeric()) return a.as_double() == b.as_double();
  if (a.kind != b.kind) return false;
  switch (a.kind) {
    case Kind::Undefined:
    case Kind::None: return true;
    case Kind::Bool: return a.b == b.b;
    case Kind::String: return a.s == b.s;
    case Kind::List: return a.list == b.list;
    case Kind::Dict:
    case Kind::Namespace: return a.dict == b.dict;
    case Kind::Function: return a.fn == b.fn;
    default: return false;
  }
}

int compare_values(const Value& a, const Value& b, bool case_sensitive) {
  if (a.kind == Kind::None && b.kind == Kind::None) return 0;
  if (a.kind == Kind::None || b.kind == Kind::None) eval_fail(std::string("cannot compare ") + a.type_name() + " with " + b.type_name());
  if (a.kind == Kind::Undefined && b.kind == Kind::Undefined) return 0;
  if (a.kind == Kind::Undefined || b.kind == Kind::Undefined)
    eval_fail(std::string("cannot compare ") + a.type_name() + " with " + b.type_name());
  if (numeric_like(a) && numeric_like(b)) {
    const double x = a.as_double(), y = b.as_double();
    return x < y ? -1 : x > y ? 1 : 0;
  }
  if (a.kind != b.kind) eval_fail(std::string("cannot compare ") + a.type_name() + " with " + b.type_name());
  if (a.kind != Kind::String) eval_fail(std::string("cannot compare values of type ") + a.type_name());
  const std::string x = case_sensitive ? a.s : lower(a.s), y = case_sensitive ? b.s : lower(b.s);
  return x < y ? -1 : x > y ? 1 : 0;
}

bool run_test(const std::string& name, const Value& v, const Value* arg) {
  if (name == "boolean") return v.kind == Kind::Bool;
  if (name == "callable") return v.kind == Kind::Function;
  if (name == "odd" || name == "even") {
    if (v.kind != Kind::Int) eval_fail("cannot test " + name + " on " + v.type_name());
    return (v.i % 2 != 0) == (name == "odd");
  }
  if (name == "false") return v.kind == Kind::Bool && !v.b;
  if (name == "true") return v.kind == Kind::Bool && v.b;
  if (name == "none") return v.kind == Kind::None;
  if (name == "string") return v.kind == Kind::String;
  if (name == "number") return v.is_numeric();
  if (name == "integer") return v.kind == Kind::Int;
  if (name == "iterable") return v.kind == Kind::List || v.kind == Kind::String;
  if (name == "mapping") return v.kind == Kind::Dict;
  if (name == "sequence") return v.kind == Kind::List || v.kind == Kind::Dict || v.kind == Kind::String;
  if (name == "lower") return v.kind == Kind::String && v.s == lower(v.s);
  if (name == "upper") return v.kind == Kind::String && v.s == upper(v.s);
  if (name == "defined") return v.kind != Kind::Undefined;
  if (name == "undefined") return v.kind == Kind::Undefined;
  if (name == "equalto" || name == "eq") return strict_equal(v, arg ? *arg : Value());
  eval_fail("unknown test '" + name + "'");
}

// Python-style slicing with JavaScript's clamping, as the reference does it.
template <typename T>
std::vector<T> slice_items(const std::vector<T>& items, std::optional<int64_t> start, std::optional<int64_t> stop, int64_t step) {
  if (step == 0) eval_fail("slice step cannot be zero");
  const int64_t n = static_cast<int64_t>(items.size());
  int64_t s, e;
  if (step > 0) {
    s = start ? (*start < 0 ? std::max<int64_t>(n + *start, 0) : std::min(*start, n)) : 0;
    e = stop ? (*stop < 0 ? std::max<int64_t>(n + *stop, 0) : std::min(*stop, n)) : n;
  } else {
    s = start ? (*start < 0 ? std::max<int64_t>(n + *start, -1) : std::min(*start, n - 1)) : n - 1;
    e = stop ? (*stop < -1 ? std::max<int64_t>(n + *stop, -1) : std::min(*stop, n - 1)) : -1;
  }
  std::vector<T> out;
  const int64_t direction = step > 0 ? 1 : -1;
  for (int64_t i = s; direction * i < direction * e; i += step) out.push_back(items[static_cast<size_t>(i)]);
  return out;
}

const Value* attribute_path(const Value& item, const std::string& path, Value& scratch) {
  const Value* v = &item;
  size_t at = 0;
  while (true) {
    const size_t dot = path.find('.', at);
    const std::string part = path.substr(at, dot == std::string::npos ? std::string::npos : dot - at);
    if (v->is_mapping()) {
      v = v->dict->find(part);
      if (!v) return nullptr;
    } else if (v->kind == Kind::List) {
      char* end = nullptr;
      const long index = std::strtol(part.c_str(), &end, 10);
      if (end == part.c_str() || index < 0 || index >= static_cast<long>(v->list->size())) return nullptr;
      v = &(*v->list)[static_cast<size_t>(index)];
    } else {
      return nullptr;
    }
    if (dot == std::string::npos) break;
    at = dot + 1;
  }
  scratch = *v;
  return &scratch;
}

const Value* arg_at(const Args& args, size_t k, const char* keyword) {
  if (k < args.positional.size()) return &args.positional[k];
  return keyword ? args.keyword(keyword) : nullptr;
}

// ---- methods of strings, dicts and lists (what value.name gives) ----

Value string_method(const Value& self, const std::string& name) {
  const std::string s = self.s;
  if (name == "length") return Value::integer(js_length(s));
  auto fn = [](auto f) { return Value::function([f](const Args& a, Env&) { return f(a); }); };
  if (name == "upper") return fn([s](const Args&) { return Value::string(upper(s)); });
  if (name == "lower") return fn([s](const Args&) { return Value::string(lower(s)); });
  // As in the reference, strip/lstrip/rstrip take no characters: they trim whitespace.
  if (name == "strip") return fn([s](const Args&) { return Value::string(js_trim(s)); });
  if (name == "lstrip") return fn([s](const Args&) { return Value::string(js_trim_start(s)); });
  if (name == "rstrip") return fn([s](const Args&) { return Value::string(js_trim_end(s)); });
  if (name == "title") return fn([s](const Args&) { return Value::string(title(s)); });
  if (name == "capitalize")
    return fn([s](const Args&) { return Value::string(s.empty() ? s : std::string(1, ascii_upper(s[0])) + s.substr(1)); });
  if (name == "startswith" || name == "endswith") {
    const bool start = name == "startswith";
    return fn([s, start, name](const Args& a) {
      if (a.positional.empty()) eval_fail(name + "() needs an argument");
      const Value& p = a.positional[0];
      const auto match = [&](const std::string& x) { return start ? starts_with(s, x) : ends_with(s, x); };
      if (p.kind == Kind::String) return Value::boolean(match(p.s));
      if (p.kind == Kind::List) {
        for (const Value& x : *p.list) {
          if (x.kind != Kind::String) eval_fail(name + "() tuple elements must be strings");
          if (match(x.s)) return Value::boolean(true);
        }
        return Value::boolean(false);
      }
      eval_fail(name + "() argument must be a string or a tuple of strings");
    });
  }
  if (name == "split") {
    return fn([s](const Args& a) {
      const Value* sep = arg_at(a, 0, "sep");
      const Value* maxsplit_arg = arg_at(a, 1, "maxsplit");
      if (sep && sep->kind != Kind::String && sep->kind != Kind::None) eval_fail("split(): sep must be a string or none");
      if (maxsplit_arg && maxsplit_arg->kind != Kind::Int) eval_fail("split(): maxsplit must be an integer");
      const int64_t maxsplit = maxsplit_arg ? maxsplit_arg->i : -1;
      List parts;
      if (!sep || sep->kind == Kind::None) {
        const std::string text = js_trim_start(s);
        size_t i = 0;
        while (i < text.size()) {
          const size_t start = i;
          while (i < text.size() && !js_space_at(text, i)) ++i;
          if (maxsplit != -1 && static_cast<int64_t>(parts.size()) >= maxsplit) {
            parts.push_back(Value::string(text.substr(start)));
            break;
          }
          parts.push_back(Value::string(text.substr(start, i - start)));
          while (size_t w = js_space_at(text, i)) i += w;
        }
      } else {
        if (sep->s.empty()) eval_fail("split(): empty separator");
        std::vector<std::string> pieces;
        size_t at = 0;
        while (true) {
          const size_t hit = s.find(sep->s, at);
          if (hit == std::string::npos) break;
          pieces.push_back(s.substr(at, hit - at));
          at = hit + sep->s.size();
        }
        pieces.push_back(s.substr(at));
        if (maxsplit != -1 && static_cast<int64_t>(pieces.size()) > maxsplit) {
          std::string rest;
          for (size_t k = static_cast<size_t>(maxsplit); k < pieces.size(); ++k)
            rest += (k > static_cast<size_t>(maxsplit) ? sep->s : "") + pieces[k];
          pieces.resize(static_cast<size_t>(maxsplit));
          pieces.push_back(rest);
        }
        for (std::string& p : pieces) parts.push_back(Value::string(std::move(p)));
      }
      return Value::make_list(std::move(parts));
    });
  }
  if (name == "replace") {
    return fn([s](const Args& a) {
      if (a.positional.size() < 2) eval_fail("replace() needs two arguments");
      const Value& from = a.positional[0];
      const Value& to = a.positional[1];
      if (from.kind != Kind::String || to.kind != Kind::String) eval_fail("replace() arguments must be strings");
      const Value* count = arg_at(a, 2, "count");
      if (count && count->kind != Kind::Int && count->kind != Kind::None) eval_fail("replace() count must be an integer");
      return Value::string(replace_all(s, from.s, to.s, count && count->kind == Kind::Int ? count->i : -1));
    });
  }
  return Value();
}

Value dict_items(const Value& d) {
  List items;
  for (const auto& kv : d.dict->items) items.push_back(Value::make_list({Value::string(kv.first), kv.second}));
  return Value::make_list(std::move(items));
}
Value dict_keys(const Value& d) {
  List keys;
  for (const auto& kv : d.dict->items) keys.push_back(Value::string(kv.first));
  return Value::make_list(std::move(keys));
}

Value dict_method(const Value& self, const std::string& name) {
  if (name == "get")
    return Value::function([self](const Args& a, Env&) {
      const Value* key = arg_at(a, 0, nullptr);
      if (!key || key->kind != Kind::String) eval_fail("get(): the key must be a string");
      if (const Value* v = self.dict->find(key->s)) return *v;
      const Value* fallback = arg_at(a, 1, nullptr);
      return fallback ? *fallback : Value::none();
    });
  if (name == "items") return Value::function([self](const Args&, Env&) { return dict_items(self); });
  if (name == "keys") return Value::function([self](const Args&, Env&) { return dict_keys(self); });
  if (name == "values")
    return Value::function([self](const Args&, Env&) {
      List values;
      for (const auto& kv : self.dict->items) values.push_back(kv.second);
      return Value::make_list(std::move(values));
    });
  if (name == "dictsort")
    return Value::function([self](const Args& a, Env&) {
      const Value* case_sensitive = arg_at(a, 0, "case_sensitive");
      const Value* by = arg_at(a, 1, "by");
      const Value* reverse = arg_at(a, 2, "reverse");
      if (case_sensitive && case_sensitive->kind != Kind::Bool) eval_fail("dictsort(): case_sensitive must be a boolean");
      if (by && (by->kind != Kind::String || (by->s != "key" && by->s != "value")))
        eval_fail("dictsort(): by must be 'key' or 'value'");
      if (reverse && reverse->kind != Kind::Bool) eval_fail("dictsort(): reverse must be a boolean");
      const size_t index = by && by->s == "value" ? 1 : 0;
      List items = *dict_items(self).list;
      std::stable_sort(items.begin(), items.end(), [&](const Value& x, const Value& y) {
        int r = compare_values((*x.list)[index], (*y.list)[index], case_sensitive && case_sensitive->b);
        if (reverse && reverse->b) r = -r;
        return r < 0;
      });
      return Value::make_list(std::move(items));
    });
  return Value();
}

std::string strftime_js(std::time_t now, const std::string& format) {
  static const char* const kLong[] = {"January", "February", "March",     "April",   "May",      "June",
                                      "July",    "August",   "September", "October", "November", "December"};
  std::tm t{};
  gmtime_r(&now, &t);
  const auto pad2 = [](int n) { return (n < 10 ? "0" : "") + std::to_string(n); };
  std::string out;
  for (size_t i = 0; i < format.size(); ++i) {
    if (format[i] != '%' || i + 1 >= format.size()) {
      out += format[i];
      continue;
    }
    const char c = format[i + 1];
    switch (c) {
      case 'Y': out += std::to_string(t.tm_year + 1900); break;
      case 'm': out += pad2(t.tm_mon + 1); break;
      case 'd': out += pad2(t.tm_mday); break;
      case 'b': out += std::string(kLong[t.tm_mon]).substr(0, 3); break;
      case 'B': out += kLong[t.tm_mon]; break;
      case 'H': out += pad2(t.tm_hour); break;
      case 'M': out += pad2(t.tm_min); break;
      case '%': out += '%'; break;
      default: out += format.substr(i, 2);
    }
    ++i;
  }
  return out;
}

class Interpreter {
 public:
  Interpreter(const std::string& origin, const RenderOptions& options) : origin_(origin), options_(options) {}

  void install_globals(Env& env) {
    env.set("true", Value::boolean(true));
    env.set("false", Value::boolean(false));
    env.set("none", Value::none());
    env.set("True", Value::boolean(true));
    env.set("False", Value::boolean(false));
    env.set("None", Value::none());
    env.set("raise_exception", Value::function([](const Args& a, Env&) -> Value {
              std::string message;
              for (size_t k = 0; k < a.positional.size(); ++k) message += (k ? "," : "") + join_part(a.positional[k]);
              eval_fail("raise_exception: " + message);
            }));
    env.set("range", Value::function([](const Args& a, Env&) {
              for (const Value& v : a.positional)
                if (v.kind != Kind::Int) eval_fail("range() takes integers");
              if (a.positional.empty() || a.positional.size() > 3) eval_fail("range() takes 1 to 3 arguments");
              int64_t start = 0, stop, step = 1;
              if (a.positional.size() == 1) {
                stop = a.positional[0].i;
              } else {
                start = a.positional[0].i;
                stop = a.positional[1].i;
                if (a.positional.size() == 3) step = a.positional[2].i;
              }
              if (step == 0) eval_fail("range() step must not be zero");
              List out;
              for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) out.push_back(Value::integer(i));
              return Value::make_list(std::move(out));
            }));
    const std::time_t now = options_.now ? *options_.now : std::time(nullptr);
    env.set("strftime_now", Value::function([now](const Args& a, Env&) {
              if (a.positional.empty() || a.positional[0].kind != Kind::String) eval_fail("strftime_now() takes a format string");
              return Value::string(strftime_js(now, a.positional[0].s));
            }));
    env.set("namespace", Value::function([](const Args& a, Env&) {
              if (a.positional.size() > 1) eval_fail("namespace() takes at most one positional argument");
              Value ns = Value::make_namespace();
              if (a.positional.size() == 1) {
                const Value& source = a.positional[0];
                if (source.kind == Kind::Dict) {
                  for (const auto& kv : source.dict->items) ns.dict->set(kv.first, kv.second);
                } else if (source.kind == Kind::List) {
                  for (const Value& pair : *source.list) {
                    if (pair.kind != Kind::List || pair.list->size() != 2 || (*pair.list)[0].kind != Kind::String)
                      eval_fail("namespace() expects a mapping or [key, value] pairs");
                    ns.dict->set((*pair.list)[0].s, (*pair.list)[1]);
                  }
                } else {
                  eval_fail(std::string("namespace() cannot take a ") + source.type_name());
                }
              }
              for (const auto& kv : a.keywords) ns.dict->set(kv.first, kv.second);
              return ns;
            }));
  }

  std::string block(const std::vector<NodePtr>& body, Env& env) {
    std::string out;
    for (const NodePtr& s : body) {
      const Value v = eval(*s, env);
      if (!nullish(v)) out += v.to_output();
    }
    return out;
  }

 private:
  [[noreturn]] void fail(const Node& n, const std::string& message) const { fail_at(origin_, n.pos, message); }

  Value eval(const Node& n, Env& env) {
    switch (n.kind) {
      case NodeKind::Text:
      case NodeKind::String: return Value::string(n.text);
      case NodeKind::Int: return Value::integer(n.i);
      case NodeKind::Float: return Value::number(n.f);
      case NodeKind::Identifier: {
        const Value* v = env.lookup(n.text);
        return v ? *v : Value();
      }
      case NodeKind::Array:
      case NodeKind::Tuple: {
        List items;
        for (const NodePtr& e : n.list) items.push_back(eval(*e, env));
        return Value::make_list(std::move(items));
      }
      case NodeKind::Object: {
        Value d = Value::make_dict();
        for (const auto& [k, v] : n.pairs) {
          const Value key = eval(*k, env);
          if (key.kind != Kind::String) fail(*k, std::string("dict keys must be strings, not ") + key.type_name());
          d.dict->set(key.s, eval(*v, env));
        }
        return d;
      }
      case NodeKind::Member: return member(n, env);
      case NodeKind::Call: return call(n, env);
      case NodeKind::Unary: return unary(n, env);
      case NodeKind::Binary: return binary(n, env);
      case NodeKind::Filter: {
        const Value operand = eval(*n.a, env);
        try {
          return apply_filter(operand, *n.b, env);
        } catch (const EvalError& e) {
          fail(n, e.message);
        }
      }
      case NodeKind::Test: {
        const Value operand = eval(*n.a, env);
        try {
          return Value::boolean(run_test(n.text, operand, nullptr) != n.flag);
        } catch (const EvalError& e) {
          fail(n, e.message);
        }
      }
      case NodeKind::Select: return eval(*n.b, env).truthy() ? eval(*n.a, env) : Value();
      case NodeKind::Ternary: return eval(*n.a, env).truthy() ? eval(*n.b, env) : eval(*n.c, env);
      case NodeKind::If: return Value::string(block(eval(*n.a, env).truthy() ? n.body : n.alt, env));
      case NodeKind::For: return for_loop(n, env);
      case NodeKind::Set: set(n, env); return Value::none();
      case NodeKind::Macro: define_macro(n, env); return Value::none();
      case NodeKind::Break: throw BreakSignal{};
      case NodeKind::Continue: throw ContinueSignal{};
      case NodeKind::Comment: return Value::none();
      case NodeKind::Slice: fail(n, "a slice outside '[]'");
      case NodeKind::KeywordArgument: fail(n, "a keyword argument outside a call");
    }
    fail(n, "unknown node");
  }

  Args arguments(const std::vector<NodePtr>& nodes, Env& env) {
    Args args;
    for (const NodePtr& a : nodes)
      if (a->kind != NodeKind::KeywordArgument) args.positional.push_back(eval(*a, env));
    for (const NodePtr& a : nodes) {
      if (a->kind != NodeKind::KeywordArgument) continue;
      if (args.keyword(a->text)) fail(*a, "keyword argument '" + a->text + "' given twice");
      args.keywords.emplace_back(a->text, eval(*a->a, env));
    }
    return args;
  }

  Value call(const Node& n, Env& env) {
    const Args args = arguments(n.list, env);
    const Value fn = eval(*n.a, env);
    if (fn.kind != Kind::Function) fail(n, std::string("cannot call ") + describe(*n.a) + ": it is " + fn.type_name());
    try {
      return (*fn.fn)(args, env);
    } catch (const EvalError& e) {
      fail(n, e.message);
    }
  }

  static std::string describe(const Node& n) {
    if (n.kind == NodeKind::Identifier) return "'" + n.text + "'";
    if (n.kind == NodeKind::Member && !n.flag && n.b->kind == NodeKind::Identifier) return "'." + n.b->text + "'";
    return "this expression";
  }

  Value member(const Node& n, Env& env) {
    const Value object = eval(*n.a, env);
    if (n.flag && n.b->kind == NodeKind::Slice) return slice(n, object, env);
    Value property;
    if (n.flag) property = eval(*n.b, env);
    else if (n.b->kind == NodeKind::Int) property = Value::integer(n.b->i);
    else property = Value::string(n.b->text);
    if (object.is_mapping()) {
      if (property.kind != Kind::String)
        fail(n, std::string("a ") + object.type_name() + " is indexed by strings, not by a " + property.type_name());
      if (const Value* v = object.dict->find(property.s)) return *v;
      return object.kind == Kind::Dict ? dict_method(object, property.s) : Value();
    }
    if (object.kind == Kind::List || object.kind == Kind::String) {
      if (property.kind == Kind::Int) {
        if (object.kind == Kind::List) {
          const int64_t size = static_cast<int64_t>(object.list->size());
          const int64_t k = property.i < 0 ? size + property.i : property.i;
          return k >= 0 && k < size ? (*object.list)[static_cast<size_t>(k)] : Value();
        }
        const std::vector<std::string> chars = code_points(object.s);
        const int64_t size = static_cast<int64_t>(chars.size());
        const int64_t k = property.i < 0 ? size + property.i : property.i;
        return k >= 0 && k < size ? Value::string(chars[static_cast<size_t>(k)]) : Value();
      }
      if (property.kind == Kind::String) {
        if (object.kind == Kind::String) return string_method(object, property.s);
        return property.s == "length" ? Value::integer(static_cast<int64_t>(object.list->size())) : Value();
      }
      fail(n, std::string("a ") + object.type_name() + " is indexed by integers, not by a " + property.type_name());
    }
    if (property.kind != Kind::String)
      fail(n, std::string("cannot index a ") + object.type_name() + " by a " + property.type_name());
    return Value();  // attributes of none, undefined, numbers: undefined
  }

  Value slice(const Node& n, const Value& object, Env& env) {
    if (object.kind != Kind::List && object.kind != Kind::String) fail(n, std::string("cannot slice a ") + object.type_name());
    const Node& s = *n.b;
    const auto part = [&](const NodePtr& p, const char* what) -> std::optional<int64_t> {
      if (!p) return std::nullopt;
      const Value v = eval(*p, env);
      if (v.kind == Kind::Undefined) return std::nullopt;
      if (v.kind != Kind::Int) fail(*p, std::string("slice ") + what + " must be an integer");
      return v.i;
    };
    const auto start = part(s.a, "start"), stop = part(s.b, "stop"), step = part(s.c, "step");
    try {
      if (object.kind == Kind::List) return Value::make_list(slice_items(*object.list, start, stop, step.value_or(1)));
      std::string out;
      for (const std::string& cp : slice_items(code_points(object.s), start, stop, step.value_or(1))) out += cp;
      return Value::string(out);
    } catch (const EvalError& e) {
      fail(n, e.message);
    }
  }

  Value unary(const Node& n, Env& env) {
    const Value v = eval(*n.a, env);
    if (n.text == "not") return Value::boolean(!v.truthy());
    const int sign = n.text == "-" ? -1 : 1;
    if (v.kind == Kind::Float) return Value::number(sign * v.f);
    if (v.kind == Kind::Int) return Value::integer(sign * v.i);
    if (v.kind == Kind::Bool) return Value::integer(sign * (v.b ? 1 : 0));
    fail(n, "unary " + n.text + " needs a number, not a " + v.type_name());
  }

  Value binary(const Node& n, Env& env) {
    const std::string& op = n.text;
    const Value left = eval(*n.a, env);
    if (op == "and") return left.truthy() ? eval(*n.b, env) : left;
    if (op == "or") return left.truthy() ? left : eval(*n.b, env);
    const Value right = eval(*n.b, env);
    if (op == "==") return Value::boolean(loose_equal(left, right));
    if (op == "!=") return Value::boolean(!loose_equal(left, right));
    const bool membership = op == "in" || op == "not in";
    if (left.kind == Kind::Undefined || right.kind == Kind::Undefined) {
      if (right.kind == Kind::Undefined && membership) return Value::boolean(op == "not in");
      fail(n, "cannot apply '" + op + "' to an undefined value");
    }
    if (left.kind == Kind::None || right.kind == Kind::None) fail(n, "cannot apply '" + op + "' to none");
    if (op == "~") return Value::string(raw_string(left) + raw_string(right));
    if (op == "**" && numeric_like(left) && numeric_like(right)) {
      const double a = left.as_double(), b = right.as_double();
      if (a == 0 && b < 0) fail(n, "0 cannot be raised to a negative power");
      const double r = std::pow(a, b);
      if (!std::isfinite(r)) fail(n, "the power is not a finite number");
      if (left.kind == Kind::Float || right.kind == Kind::Float || b < 0) return Value::number(r);
      return Value::integer(static_cast<int64_t>(r));
    }
    if (left.is_numeric() && right.is_numeric()) {
      const bool is_float = left.kind == Kind::Float || right.kind == Kind::Float;
      const double a = left.as_double(), b = right.as_double();
      if (op == "+" || op == "-" || op == "*") {
        if (!is_float) {
          const int64_t x = left.i, y = right.i;
          return Value::integer(op == "+" ? x + y : op == "-" ? x - y : x * y);
        }
        return Value::number(op == "+" ? a + b : op == "-" ? a - b : a * b);
      }
      if (op == "/") {
        if (b == 0) fail(n, "division by zero");
        return Value::number(a / b);
      }
      if (op == "//" || op == "%") {
        if (b == 0) fail(n, "division by zero");
        if (op == "//") {
          const double r = std::floor(a / b);
          return is_float ? Value::number(r) : Value::integer(static_cast<int64_t>(r));
        }
        return is_float ? Value::number(std::fmod(a, b)) : Value::integer(left.i % right.i);
      }
      if (op == "<") return Value::boolean(a < b);
      if (op == ">") return Value::boolean(a > b);
      if (op == "<=") return Value::boolean(a <= b);
      if (op == ">=") return Value::boolean(a >= b);
    } else if (left.kind == Kind::List && right.kind == Kind::List) {
      if (op == "+") {
        List items = *left.list;
        items.insert(items.end(), right.list->begin(), right.list->end());
        return Value::make_list(std::move(items));
      }
    } else if (right.kind == Kind::List && membership) {
      bool found = false;
      for (const Value& x : *right.list) found = found || strict_equal(x, left);
      return Value::boolean(found == (op == "in"));
    }
    if ((left.kind == Kind::String || right.kind == Kind::String) && op == "+")
      return Value::string(raw_string(left) + raw_string(right));
    if (left.kind == Kind::String && right.kind == Kind::String && membership)
      return Value::boolean((right.s.find(left.s) != std::string::npos) == (op == "in"));
    if (left.kind == Kind::String && right.kind == Kind::Dict && membership)
      return Value::boolean((right.dict->find(left.s) != nullptr) == (op == "in"));
    fail(n, "cannot apply '" + op + "' to a " + left.type_name() + " and a " + right.type_name());
  }

  // ---- filters ----

  Value apply_filter(const Value& v, const Node& f, Env& env) {
    if (f.kind == NodeKind::Identifier) return plain_filter(v, f.text);
    const std::string& name = f.a->text;
    const Args args = arguments(f.list, env);
    if (name == "tojson") {
      JsonStyle style;
      if (const Value* indent = args.keyword("indent")) {
        if (indent->kind != Kind::Int && indent->kind != Kind::None) eval_fail("tojson(): indent must be an integer");
        if (indent->kind == Kind::Int) style.indent = static_cast<int>(indent->i);
      }
      if (const Value* ascii = args.keyword("ensure_ascii")) {
        if (ascii->kind != Kind::Bool) eval_fail("tojson(): ensure_ascii must be a boolean");
        style.ensure_ascii = ascii->b;
      }
      if (const Value* sort = args.keyword("sort_keys")) {
        if (sort->kind != Kind::Bool) eval_fail("tojson(): sort_keys must be a boolean");
        style.sort_keys = sort->b;
      }
      if (const Value* sep = args.keyword("separators")) {
        if (sep->kind == Kind::List) {
          if (sep->list->size() != 2 || (*sep->list)[0].kind != Kind::String || (*sep->list)[1].kind != Kind::String)
            eval_fail("tojson(): separators must be two strings");
          style.item_separator = (*sep->list)[0].s;
          style.key_separator = (*sep->list)[1].s;
          if (style.item_separator.empty() || style.key_separator.empty())
            eval_fail("tojson(): empty separators are not supported");
        } else if (sep->kind != Kind::None) {
          eval_fail("tojson(): separators must be two strings");
        }
      }
      return Value::string(to_json(v, style));
    }
    if (name == "join") {
      std::vector<std::string> parts;
      if (v.kind == Kind::String) parts = code_points(v.s);
      else if (v.kind == Kind::List) for (const Value& x : *v.list) parts.push_back(join_part(x));
      else eval_fail(std::string("cannot apply filter 'join' to a ") + v.type_name());
      const Value* sep = arg_at(args, 0, "separator");
      if (sep && sep->kind != Kind::String) eval_fail("join(): the separator must be a string");
      std::string out;
      for (size_t k = 0; k < parts.size(); ++k) out += (k && sep ? sep->s : "") + parts[k];
      return Value::string(out);
    }
    if (name == "int" || name == "float") {
      const Value* fallback = arg_at(args, 0, "default");
      const bool integer = name == "int";
      if (v.kind == Kind::String) {
        const Value parsed = parse_number(v.s, integer);
        if (parsed.kind == Kind::Undefined) return fallback ? *fallback : integer ? Value::integer(0) : Value::number(0);
        return parsed;
      }
      if (v.is_numeric()) return v;
      if (v.kind == Kind::Bool) return integer ? Value::integer(v.b ? 1 : 0) : Value::number(v.b ? 1 : 0);
      eval_fail("cannot apply filter '" + name + "' to a " + v.type_name());
    }
    if (name == "default") {
      const Value fallback = !args.positional.empty() ? args.positional[0] : Value::string("");
      const Value* boolean = arg_at(args, 1, "boolean");
      if (boolean && boolean->kind != Kind::Bool) eval_fail("default(): boolean must be a boolean");
      if (v.kind == Kind::Undefined || (boolean && boolean->b && !v.truthy())) return fallback;
      return v;
    }
    if (v.kind == Kind::List) {
      if (name == "sort") {
        const Value* reverse = arg_at(args, 0, "reverse");
        const Value* case_sensitive = arg_at(args, 1, "case_sensitive");
        const Value* attribute = arg_at(args, 2, "attribute");
        const bool rev = reverse && reverse->truthy(), cs = case_sensitive && case_sensitive->truthy();
        List items = *v.list;
        const auto key = [&](const Value& item) {
          if (!attribute || attribute->kind == Kind::None) return item;
          Value scratch;
          const std::string path = attribute->kind == Kind::Int ? std::to_string(attribute->i) : attribute->s;
          const Value* found = attribute_path(item, path, scratch);
          return found ? *found : Value();
        };
        std::stable_sort(items.begin(), items.end(), [&](const Value& x, const Value& y) {
          const int r = compare_values(key(x), key(y), cs);
          return (rev ? -r : r) < 0;
        });
        return Value::make_list(std::move(items));
      }
      if (name == "selectattr" || name == "rejectattr") {
        const bool select = name == "selectattr";
        for (const Value& item : *v.list)
          if (!item.is_mapping()) eval_fail(name + " needs a list of dicts");
        if (args.positional.empty()) eval_fail(name + " needs an attribute name");
        const std::string attr = args.positional[0].s;
        const std::string test = args.positional.size() > 1 ? args.positional[1].s : "";
        const Value* test_arg = args.positional.size() > 2 ? &args.positional[2] : nullptr;
        List out;
        for (const Value& item : *v.list) {
          const Value* a = item.dict->find(attr);
          const bool result = a ? (test.empty() ? a->truthy() : run_test(test, *a, test_arg)) : false;
          if (result == select) out.push_back(item);
        }
        return Value::make_list(std::move(out));
      }
      if (name == "map") {
        const Value* attr = args.keyword("attribute");
        if (!attr) eval_fail("map() is supported with attribute= only");
        if (attr->kind != Kind::String) eval_fail("map(): attribute must be a string");
        const Value* fallback = args.keyword("default");
        List out;
        for (const Value& item : *v.list) {
          if (!item.is_mapping()) eval_fail("map(attribute=...) needs a list of dicts");
          Value scratch;
          const Value* found = attribute_path(item, attr->s, scratch);
          out.push_back(found && found->kind != Kind::Undefined ? *found : fallback ? *fallback : Value());
        }
        return Value::make_list(std::move(out));
      }
      eval_fail("filter '" + name + "(...)' does not apply to a list");
    }
    if (v.kind == Kind::String) {
      if (name == "indent") {
        const Value* width = arg_at(args, 0, "width");
        const Value* first = arg_at(args, 1, "first");
        const Value* blank = arg_at(args, 2, "blank");
        if (width && width->kind != Kind::Int) eval_fail("indent(): width must be an integer");
        return Value::string(indent(v.s, width ? width->i : 4, first && first->truthy(), blank && blank->truthy()));
      }
      if (name == "replace") return (*string_method(v, "replace").fn)(args, env);
      eval_fail("filter '" + name + "(...)' does not apply to a string");
    }
    if (v.kind == Kind::Dict) {
      const Value method = dict_method(v, name);
      if (method.kind == Kind::Function) return (*method.fn)(args, env);
      eval_fail("filter '" + name + "(...)' does not apply to a dict");
    }
    eval_fail("cannot apply filter '" + name + "' to a " + v.type_name());
  }

  static std::string indent(const std::string& s, int64_t width, bool first, bool blank) {
    std::string out;
    const std::string pad(static_cast<size_t>(std::max<int64_t>(width, 0)), ' ');
    size_t at = 0;
    for (size_t line = 0;; ++line) {
      const size_t nl = s.find('\n', at);
      const std::string text = s.substr(at, nl == std::string::npos ? std::string::npos : nl - at);
      if (line) out += '\n';
      out += ((!first && line == 0) || (!blank && text.empty())) ? text : pad + text;
      if (nl == std::string::npos) break;
      at = nl + 1;
    }
    return out;
  }

  // JavaScript's parseInt(s, 10) / parseFloat(s); undefined for NaN.
  static Value parse_number(const std::string& s, bool integer) {
    const std::string t = js_trim_start(s);
    size_t k = 0;
    if (k < t.size() && (t[k] == '+' || t[k] == '-')) ++k;
    const size_t digits_start = k;
    while (k < t.size() && t[k] >= '0' && t[k] <= '9') ++k;
    if (integer) {
      if (k == digits_start) return Value();
      return Value::integer(std::stoll(t.substr(0, k)));
    }
    char* end = nullptr;
    const double d = std::strtod(t.c_str(), &end);
    if (end == t.c_str() || std::isnan(d)) return Value();
    if (t.find_first_of("xX") < static_cast<size_t>(end - t.c_str())) return Value::number(0);
    return Value::number(d);
  }

  Value plain_filter(const Value& v, const std::string& name) {
    if (name == "safe") return v;
    if (name == "tojson") return Value::string(to_json(v, JsonStyle()));
    if (v.kind == Kind::List) {
      const List& items = *v.list;
      if (name == "list") return v;
      if (name == "first") return items.empty() ? Value() : items.front();
      if (name == "last") return items.empty() ? Value() : items.back();
      if (name == "length") return Value::integer(static_cast<int64_t>(items.size()));
      if (name == "reverse") return Value::make_list(List(items.rbegin(), items.rend()));
      if (name == "sort") {
        List sorted = items;
        std::stable_sort(sorted.begin(), sorted.end(), [](const Value& x, const Value& y) { return compare_values(x, y, false) < 0; });
        return Value::make_list(std::move(sorted));
      }
      if (name == "join") {
        std::string out;
        for (const Value& x : items) out += join_part(x);
        return Value::string(out);
      }
      if (name == "string") {
        JsonStyle style;
        style.undefined_as_null = false;
        return Value::string(to_json(v, style));
      }
      if (name == "unique") {
        List out;
        for (const Value& x : items) {
          bool seen = false;
          for (const Value& y : out) seen = seen || strict_equal(x, y);
          if (!seen) out.push_back(x);
        }
        return Value::make_list(std::move(out));
      }
      eval_fail("filter '" + name + "' does not apply to a list");
    }
    if (v.kind == Kind::String) {
      if (name == "length") return Value::integer(js_length(v.s));
      if (name == "upper") return Value::string(upper(v.s));
      if (name == "lower") return Value::string(lower(v.s));
      if (name == "title") return Value::string(title(v.s));
      if (name == "capitalize") return Value::string(v.s.empty() ? v.s : std::string(1, ascii_upper(v.s[0])) + v.s.substr(1));
      if (name == "trim") return Value::string(js_trim(v.s));
      if (name == "indent") return Value::string(indent(v.s, 4, false, false));
      if (name == "join" || name == "string") return v;
      if (name == "int") {
        const Value parsed = parse_number(v.s, true);
        return parsed.kind == Kind::Undefined ? Value::integer(0) : parsed;
      }
      if (name == "float") {
        const Value parsed = parse_number(v.s, false);
        return parsed.kind == Kind::Undefined ? Value::number(0) : parsed;
      }
      eval_fail("filter '" + name + "' does not apply to a string");
    }
    if (v.is_numeric()) {
      if (name == "abs") return v.kind == Kind::Int ? Value::integer(v.i < 0 ? -v.i : v.i) : Value::number(std::fabs(v.f));
      if (name == "int") return v.kind == Kind::Int ? v : Value::integer(static_cast<int64_t>(std::floor(v.f)));
      if (name == "float") return Value::number(v.as_double());
      if (name == "string") return Value::string(v.to_output());
      eval_fail("filter '" + name + "' does not apply to a number");
    }
    if (v.kind == Kind::Dict) {
      if (name == "items") return dict_items(v);
      if (name == "length") return Value::integer(static_cast<int64_t>(v.dict->items.size()));
      const Value method = dict_method(v, name);
      if (method.kind == Kind::Function) {
        Env scratch;
        return (*method.fn)(Args(), scratch);
      }
      eval_fail("filter '" + name + "' does not apply to a dict");
    }
    if (v.kind == Kind::Bool) {
      if (name == "bool") return v;
      if (name == "int") return Value::integer(v.b ? 1 : 0);
      if (name == "float") return Value::number(v.b ? 1 : 0);
      if (name == "string") return Value::string(v.b ? "true" : "false");
      eval_fail("filter '" + name + "' does not apply to a bool");
    }
    eval_fail("cannot apply filter '" + name + "' to " + (v.kind == Kind::Undefined ? "an undefined value" : std::string("a ") + v.type_name()));
  }

  // ---- statements ----

  void bind(const Node& target, const Value& value, Env& env) {
    if (target.kind == NodeKind::Identifier) {
      env.set(target.text, value);
      return;
    }
    if (value.kind != Kind::List) fail(target, std::string("cannot unpack a ") + value.type_name());
    if (value.list->size() != target.list.size())
      fail(target, "cannot unpack " + std::to_string(value.list->size()) + " values into " + std::to_string(target.list.size()) + " names");
    for (size_t k = 0; k < target.list.size(); ++k) {
      if (target.list[k]->kind != NodeKind::Identifier) fail(*target.list[k], "expected a name to unpack into");
      env.set(target.list[k]->text, (*value.list)[k]);
    }
  }

  void set(const Node& n, Env& env) {
    const Value value = n.b ? eval(*n.b, env) : Value::string(block(n.body, env));
    const Node& target = *n.a;
    if (target.kind == NodeKind::Identifier || target.kind == NodeKind::Tuple) {
      bind(target, value, env);
    } else if (target.kind == NodeKind::Member && !target.flag && target.b->kind == NodeKind::Identifier) {
      const Value object = eval(*target.a, env);
      if (object.kind != Kind::Namespace)
        fail(target, std::string("can only set attributes of a namespace(), not of a ") + object.type_name());
      object.dict->set(target.b->text, value);
    } else {
      fail(target, "cannot assign to this expression");
    }
  }

  Value for_loop(const Node& n, Env& env) {
    Env scope{&env, {}};
    const Node* test = nullptr;
    Value iterable;
    if (n.b->kind == NodeKind::Select) {
      iterable = eval(*n.b->a, scope);
      test = n.b->b.get();
    } else {
      iterable = eval(*n.b, scope);
    }
    if (iterable.kind == Kind::Dict) iterable = dict_keys(iterable);
    if (iterable.kind != Kind::List) fail(*n.b, std::string("cannot loop over a ") + iterable.type_name());
    List items;
    for (const Value& item : *iterable.list) {
      if (test) {
        Env loop_scope{&scope, {}};
        bind(*n.a, item, loop_scope);
        if (!eval(*test, loop_scope).truthy()) continue;
      }
      items.push_back(item);
    }
    std::string out;
    bool no_iteration = true;
    const int64_t length = static_cast<int64_t>(items.size());
    for (int64_t k = 0; k < length; ++k) {
      Value loop = Value::make_dict();
      Dict& l = *loop.dict;
      l.set("index", Value::integer(k + 1));
      l.set("index0", Value::integer(k));
      l.set("revindex", Value::integer(length - k));
      l.set("revindex0", Value::integer(length - k - 1));
      l.set("first", Value::boolean(k == 0));
      l.set("last", Value::boolean(k == length - 1));
      l.set("length", Value::integer(length));
      l.set("previtem", k > 0 ? items[static_cast<size_t>(k - 1)] : Value());
      l.set("nextitem", k < length - 1 ? items[static_cast<size_t>(k + 1)] : Value());
      scope.set("loop", loop);
      bind(*n.a, items[static_cast<size_t>(k)], scope);
      try {
        out += block(n.body, scope);
      } catch (const ContinueSignal&) {
        continue;
      } catch (const BreakSignal&) {
        break;
      }
      no_iteration = false;
    }
    if (no_iteration) out += block(n.alt, scope);
    return Value::string(out);
  }

  void define_macro(const Node& n, Env& env) {
    const Node* macro = &n;
    env.set(n.text, Value::function([this, macro](const Args& args, Env& caller) {
              // A macro calling itself without end would overflow the stack: stop at a depth no chat
              // template comes near.
              if (macro_depth_ >= kMaxMacroDepth)
                eval_fail("macro '" + macro->text + "' nested deeper than " + std::to_string(kMaxMacroDepth) + " calls");
              ++macro_depth_;
              struct Unwind {
                int& depth;
                ~Unwind() { --depth; }
              } unwind{macro_depth_};
              Env scope{&caller, {}};
              std::vector<std::pair<std::string, const Node*>> defaults;
              std::vector<std::pair<std::string, Value>> keywords = args.keywords;
              const size_t count = macro->list.size();
              for (size_t k = 0; k < count; ++k) {
                const Node& p = *macro->list[k];
                const std::string& name = p.text;
                std::optional<Value> value;
                if (k < args.positional.size()) value = args.positional[k];
                for (auto it = keywords.begin(); !value && it != keywords.end(); ++it) {
                  if (it->first == name) {
                    value = it->second;
                    keywords.erase(it);
                    break;
                  }
                }
                if (!value && p.kind == NodeKind::KeywordArgument) defaults.emplace_back(name, p.a.get());
                scope.set(name, value ? *value : Value());
              }
              if (!keywords.empty()) eval_fail("macro '" + macro->text + "' takes no keyword argument '" + keywords[0].first + "'");
              if (args.positional.size() > count)
                eval_fail("macro '" + macro->text + "' takes at most " + std::to_string(count) + " argument(s)");
              for (const auto& [name, expr] : defaults) scope.set(name, eval(*expr, scope));
              return Value::string(block(macro->body, scope));
            }));
  }

  static constexpr int kMaxMacroDepth = 200;
  const std::string& origin_;
  RenderOptions options_;
  int macro_depth_ = 0;
};

}  // namespace

Template::Template(const std::string& source, std::string origin)
    : source_(std::make_shared<const std::string>(source)), origin_(std::move(origin)) {
  program_ = std::make_shared<const std::vector<NodePtr>>(parse(tokenize(*source_, origin_), origin_));
}

std::string Template::render(const nlohmann::ordered_json& variables, const RenderOptions& options) const {
  Interpreter interpreter(origin_, options);
  Env globals;
  interpreter.install_globals(globals);
  if (!variables.is_null() && !variables.is_object()) throw JinjaError(origin_ + ": the variables must be a JSON object");
  for (auto it = variables.begin(); !variables.is_null() && it != variables.end(); ++it)
    globals.set(it.key(), Value::from_json(it.value()));
  try {
    return interpreter.block(*program_, globals);
  } catch (const BreakSignal&) {
    throw JinjaError(origin_ + ": {% break %} outside a loop");
  } catch (const ContinueSignal&) {
    throw JinjaError(origin_ + ": {% continue %} outside a loop");
  } catch (const EvalError& e) {
    throw JinjaError(origin_ + ": " + e.message);
  }
}

}  // namespace grpo::jinja
