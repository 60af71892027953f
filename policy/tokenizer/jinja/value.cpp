#include "policy/tokenizer/jinja/value.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>

namespace grpo::jinja {

// Byte length of the JavaScript whitespace character (/\s/) starting at s[i], 0 if there is none.
size_t js_space_at(const std::string& s, size_t i) {
  if (i >= s.size()) return 0;
  const auto c = static_cast<unsigned char>(s[i]);
  if (c == ' ' || (c >= '\t' && c <= '\r')) return 1;
  if (c < 0x80) return 0;
  uint32_t cp = 0;
  size_t length = 0;
  if ((c >> 5) == 6) cp = c & 0x1f, length = 2;
  else if ((c >> 4) == 14) cp = c & 0x0f, length = 3;
  else return 0;
  if (i + length > s.size()) return 0;
  for (size_t k = 1; k < length; ++k) cp = (cp << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3f);
  const bool space = cp == 0xa0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200a) || cp == 0x2028 || cp == 0x2029 ||
                     cp == 0x202f || cp == 0x205f || cp == 0x3000 || cp == 0xfeff;
  return space ? length : 0;
}

// Byte length of the whitespace character that ends s[0, end), 0 if there is none.
size_t js_space_before(const std::string& s, size_t end) {
  if (end == 0) return 0;
  size_t start = end - 1;
  while (start > 0 && end - start < 3 && (static_cast<unsigned char>(s[start]) & 0xc0) == 0x80) --start;
  return js_space_at(s, start) == end - start ? end - start : 0;
}

const Value* Dict::find(const std::string& key) const {
  for (const auto& kv : items)
    if (kv.first == key) return &kv.second;
  return nullptr;
}

void Dict::set(const std::string& key, Value value) {
  for (auto& kv : items) {
    if (kv.first == key) {
      kv.second = std::move(value);
      return;
    }
  }
  items.emplace_back(key, std::move(value));
}

const Value* Args::keyword(const std::string& name) const {
  for (const auto& kv : keywords)
    if (kv.first == name) return &kv.second;
  return nullptr;
}

Value Value::none() {
  Value v;
  v.kind = Kind::None;
  return v;
}
Value Value::boolean(bool x) {
  Value v;
  v.kind = Kind::Bool;
  v.b = x;
  return v;
}
Value Value::integer(int64_t x) {
  Value v;
  v.kind = Kind::Int;
  v.i = x;
  return v;
}
Value Value::number(double x) {
  Value v;
  v.kind = Kind::Float;
  v.f = x;
  return v;
}
Value Value::string(std::string x) {
  Value v;
  v.kind = Kind::String;
  v.s = std::move(x);
  return v;
}
Value Value::make_list(List items) {
  Value v;
  v.kind = Kind::List;
  v.list = std::make_shared<List>(std::move(items));
  return v;
}
Value Value::make_dict() {
  Value v;
  v.kind = Kind::Dict;
  v.dict = std::make_shared<Dict>();
  return v;
}
Value Value::make_namespace() {
  Value v;
  v.kind = Kind::Namespace;
  v.dict = std::make_shared<Dict>();
  return v;
}
Value Value::function(Function f) {
  Value v;
  v.kind = Kind::Function;
  v.fn = std::make_shared<Function>(std::move(f));
  return v;
}

Value Value::from_json(const nlohmann::ordered_json& j) {
  switch (j.type()) {
    case nlohmann::ordered_json::value_t::null:
      return none();
    case nlohmann::ordered_json::value_t::boolean:
      return boolean(j.get<bool>());
    case nlohmann::ordered_json::value_t::number_integer:
      return integer(j.get<int64_t>());
    case nlohmann::ordered_json::value_t::number_unsigned:
      return integer(static_cast<int64_t>(j.get<uint64_t>()));
    case nlohmann::ordered_json::value_t::number_float: {
      // JavaScript has one number type: 2.0 parses to 2, an integer.
      const double d = j.get<double>();
      if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9007199254740992.0) return integer(static_cast<int64_t>(d));
      return number(d);
    }
    case nlohmann::ordered_json::value_t::string:
      return string(j.get<std::string>());
    case nlohmann::ordered_json::value_t::array: {
      List items;
      for (const auto& e : j) items.push_back(from_json(e));
      return make_list(std::move(items));
    }
    case nlohmann::ordered_json::value_t::object: {
      Value d = make_dict();
      for (auto it = j.begin(); it != j.end(); ++it) d.dict->set(it.key(), from_json(it.value()));
      return d;
    }
    default:
      return undefined();
  }
}

bool Value::truthy() const {
  switch (kind) {
    case Kind::Undefined:
    case Kind::None:
      return false;
    case Kind::Bool:
      return b;
    case Kind::Int:
      return i != 0;
    case Kind::Float:
      return f != 0 && !std::isnan(f);
    case Kind::String:
      return !s.empty();
    case Kind::List:
      return !list->empty();
    case Kind::Dict:
      return !dict->items.empty();
    case Kind::Namespace:
    case Kind::Function:
      return true;
  }
  return false;
}

const char* Value::type_name() const {
  switch (kind) {
    case Kind::Undefined: return "undefined";
    case Kind::None: return "none";
    case Kind::Bool: return "bool";
    case Kind::Int: return "int";
    case Kind::Float: return "float";
    case Kind::String: return "string";
    case Kind::List: return "list";
    case Kind::Dict: return "dict";
    case Kind::Namespace: return "namespace";
    case Kind::Function: return "function";
  }
  return "?";
}

std::string js_number(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "Infinity" : "-Infinity";
  if (v == 0) return "0";
  std::string sign = v < 0 ? "-" : "";
  const double a = std::fabs(v);
  char buf[64];
  for (int precision = 1; precision <= 17; ++precision) {
    std::snprintf(buf, sizeof buf, "%.*e", precision - 1, a);
    if (std::strtod(buf, nullptr) == a) break;
  }
  // buf is d.ddde[+-]xx: split into digits and the decimal exponent.
  std::string text = buf;
  const size_t e = text.find('e');
  std::string digits;
  for (size_t k = 0; k < e; ++k)
    if (text[k] != '.') digits += text[k];
  while (digits.size() > 1 && digits.back() == '0') digits.pop_back();
  const int exponent = std::atoi(text.c_str() + e + 1);
  const int k = static_cast<int>(digits.size());
  const int n = exponent + 1;  // the position of the decimal point
  if (k <= n && n <= 21) return sign + digits + std::string(n - k, '0');
  if (0 < n && n <= 21) return sign + digits.substr(0, n) + "." + digits.substr(n);
  if (-6 < n && n <= 0) return sign + "0." + std::string(-n, '0') + digits;
  std::string out = sign + digits.substr(0, 1);
  if (k > 1) out += "." + digits.substr(1);
  out += "e";
  out += (n - 1 >= 0 ? "+" : "-");
  out += std::to_string(std::abs(n - 1));
  return out;
}

namespace {

// Decodes the UTF-8 code point at s[i], advancing i; a stray byte counts as itself.
uint32_t jinja_next_code_point(const std::string& s, size_t& i) {
  const auto c = static_cast<unsigned char>(s[i]);
  int length = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 1;
  if (i + length > s.size()) length = 1;
  uint32_t cp = length == 1 ? c : length == 2 ? (c & 0x1f) : length == 3 ? (c & 0x0f) : (c & 0x07);
  for (int k = 1; k < length; ++k) cp = (cp << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3f);
  i += length;
  return cp;
}

void append_u_escape(std::string& out, uint32_t unit) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "\\u%04x", unit);
  out += buf;
}

}  // namespace

std::string json_string(const std::string& s, bool ensure_ascii) {
  std::string out = "\"";
  for (size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      ++i;
      switch (c) {
        case '"': out += "\\\""; break;
        case '\\': out += "\\\\"; break;
        case '\b': out += "\\b"; break;
        case '\f': out += "\\f"; break;
        case '\n': out += "\\n"; break;
        case '\r': out += "\\r"; break;
        case '\t': out += "\\t"; break;
        default:
          if (c < 0x20 || (ensure_ascii && c == 0x7f)) append_u_escape(out, c);
          else out += static_cast<char>(c);
      }
      continue;
    }
    const size_t start = i;
    const uint32_t cp = jinja_next_code_point(s, i);
    if (!ensure_ascii) {
      out.append(s, start, i - start);
    } else if (cp >= 0x10000) {  // a surrogate pair in UTF-16, each unit escaped
      append_u_escape(out, 0xd800 + ((cp - 0x10000) >> 10));
      append_u_escape(out, 0xdc00 + ((cp - 0x10000) & 0x3ff));
    } else {
      append_u_escape(out, cp);
    }
  }
  return out + "\"";
}

std::string to_json(const Value& v, const JsonStyle& style, int depth) {
  using Kind = Value::Kind;
  const bool indented = style.indent > 0;
  const std::string item_sep = !style.item_separator.empty() ? style.item_separator : indented ? "," : ", ";
  const std::string key_sep = !style.key_separator.empty() ? style.key_separator : ": ";
  switch (v.kind) {
    case Kind::None:
      return "null";
    case Kind::Undefined:
      return style.undefined_as_null ? "null" : "undefined";
    case Kind::Bool:
      return v.b ? "true" : "false";
    case Kind::Int:
      return std::to_string(v.i);
    case Kind::Float:
      return std::isfinite(v.f) ? js_number(v.f) : "null";
    case Kind::String:
      return json_string(v.s, style.ensure_ascii);
    case Kind::List:
    case Kind::Dict:
    case Kind::Namespace: {
      const std::string unit = indented ? std::string(style.indent, ' ') : "";
      std::string base = "\n";
      for (int d = 0; d < depth; ++d) base += unit;
      const std::string child = base + unit;
      std::vector<std::string> core;
      if (v.kind == Kind::List) {
        for (const Value& e : *v.list) core.push_back(to_json(e, style, depth + 1));
        std::string out = "[";
        if (indented && !core.empty()) out += child;
        for (size_t k = 0; k < core.size(); ++k) {
          if (k) out += indented ? item_sep + child : item_sep;
          out += core[k];
        }
        if (indented && !core.empty()) out += base;
        return out + "]";
      }
      std::vector<std::pair<std::string, Value>> entries = v.dict->items;
      if (style.sort_keys)
        std::stable_sort(entries.begin(), entries.end(), [](const auto& x, const auto& y) { return x.first < y.first; });
      for (const auto& kv : entries) {
        std::string item = json_string(kv.first, style.ensure_ascii) + key_sep + to_json(kv.second, style, depth + 1);
        core.push_back(indented ? child + item : item);
      }
      std::string out = "{";
      for (size_t k = 0; k < core.size(); ++k) {
        if (k) out += item_sep;
        out += core[k];
      }
      if (indented && !core.empty()) out += base;
      return out + "}";
    }
    case Kind::Function:
      break;
  }
  return "null";
}

std::string Value::to_output() const {
  switch (kind) {
    case Kind::Undefined:
    case Kind::None:
      return "";
    case Kind::Bool:
      return b ? "true" : "false";
    case Kind::Int:
      return std::to_string(i);
    case Kind::Float: {
      if (f == 0 && std::signbit(f)) return "-0.0";
      const std::string text = js_number(f);
      if (std::isfinite(f) && f == std::floor(f) && text.find('e') == std::string::npos) return text + ".0";
      return text;
    }
    case Kind::String:
      return s;
    case Kind::List:
    case Kind::Dict:
    case Kind::Namespace: {
      JsonStyle style;
      style.undefined_as_null = false;
      return to_json(*this, style);
    }
    case Kind::Function:
      return "<function>";
  }
  return "";
}

}  // namespace grpo::jinja
