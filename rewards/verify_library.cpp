#include "rewards/verify_library.h"

#include <lua.hpp>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <string>
#include <string_view>

#include "rewards/arith_eval.h"
#include "rewards/math_equal.h"
#include "rewards/script_ratio.h"
#include "rewards/text_extract.h"

namespace grpo::rewards {
namespace {

// A Lua error longjmps over C++ frames without running destructors. So each function computes in
// C++ inside `guarded` (exceptions become a Lua error raised after the C++ objects are gone) and
// keeps results that outlive that block in per-thread storage, never on the frame a Lua call may
// leave.
template <typename Compute>
void guarded(lua_State* state, Compute&& compute) {
  char message[256];
  bool failed = false;
  try {
    compute();
  } catch (const std::exception& error) {
    std::snprintf(message, sizeof message, "%s", error.what());
    failed = true;
  }
  if (failed) luaL_error(state, "%s", message);
}

std::string& scratch() {
  thread_local std::string text;
  return text;
}

std::string_view check_text(lua_State* state, int index) {
  std::size_t size = 0;
  const char* text = luaL_checklstring(state, index, &size);
  return {text, size};
}

int push_optional_text(lua_State* state, bool found) {
  if (!found) {
    lua_pushnil(state);
  } else {
    lua_pushlstring(state, scratch().data(), scratch().size());
  }
  return 1;
}

int verify_extract_boxed(lua_State* state) {
  const std::string_view text = check_text(state, 1);
  bool found = false;
  guarded(state, [&] {
    auto content = extract_boxed(text);
    if ((found = content.has_value())) scratch() = std::move(*content);
  });
  return push_optional_text(state, found);
}

int verify_extract_tag(lua_State* state) {
  const std::string_view text = check_text(state, 1);
  const std::string_view tag = check_text(state, 2);
  bool found = false;
  guarded(state, [&] {
    auto content = extract_tag(text, tag);
    if ((found = content.has_value())) scratch() = std::move(*content);
  });
  return push_optional_text(state, found);
}

// A number as Lua sees it: an integer when the text is one that fits, a float otherwise.
void push_number_text(lua_State* state, const std::string& text) {
  if (lua_stringtonumber(state, text.c_str()) == 0) lua_pushnil(state);
}

int verify_last_number(lua_State* state) {
  const std::string_view text = check_text(state, 1);
  bool found = false;
  guarded(state, [&] {
    auto number = last_number(text);
    if ((found = number.has_value())) scratch() = std::move(*number);
  });
  if (!found) {
    lua_pushnil(state);
  } else {
    push_number_text(state, scratch());
  }
  return 1;
}

int verify_script_ratio(lua_State* state) {
  const std::string_view text = check_text(state, 1);
  const std::string_view script = check_text(state, 2);
  std::optional<double> ratio;
  guarded(state, [&] { ratio = script_ratio(text, script); });
  if (!ratio) return luaL_error(state, "verify.script_ratio: unknown script '%s'", script.data());
  lua_pushnumber(state, *ratio);
  return 1;
}

// verify.math_equal(predicted, gold [, relative_tolerance]) -> boolean. A non-string answer (nil when
// nothing was extracted) is simply not equal.
int verify_math_equal(lua_State* state) {
  if (lua_type(state, 1) != LUA_TSTRING && lua_type(state, 1) != LUA_TNUMBER) {
    lua_pushboolean(state, 0);
    return 1;
  }
  const std::string_view predicted = check_text(state, 1);
  const std::string_view gold = check_text(state, 2);
  MathEqualOptions options;
  options.relative_tolerance = luaL_optnumber(state, 3, options.relative_tolerance);
  bool equal = false;
  guarded(state, [&] { equal = math_equal(predicted, gold, options); });
  lua_pushboolean(state, equal);
  return 1;
}

// verify.eval_arith(expression) -> value, exact ("p/q" or "n"); or nil, reason. The value is an
// integer when the exact result is one, a float otherwise.
int verify_eval_arith(lua_State* state) {
  const std::string_view expression = check_text(state, 1);
  bool ok = false;
  double value = 0;
  std::int64_t integer = 0;
  bool is_integer = false;
  guarded(state, [&] {
    ArithResult result = eval_arith(expression);
    ok = result.value.has_value();
    if (ok) {
      value = result.value->to_double();
      is_integer = result.value->is_integer();
      integer = result.value->numerator();
      scratch() = result.value->to_string();
    } else {
      scratch() = std::move(result.error);
    }
  });
  if (!ok) {
    lua_pushnil(state);
    lua_pushlstring(state, scratch().data(), scratch().size());
    return 2;
  }
  if (is_integer) {
    lua_pushinteger(state, integer);
  } else {
    lua_pushnumber(state, value);
  }
  lua_pushlstring(state, scratch().data(), scratch().size());
  return 2;
}

}  // namespace

void open_verify_library(lua_State* state) {
  const luaL_Reg functions[] = {
      {"extract_boxed", verify_extract_boxed},
      {"extract_tag", verify_extract_tag},
      {"last_number", verify_last_number},
      {"script_ratio", verify_script_ratio},
      {"math_equal", verify_math_equal},
      {"eval_arith", verify_eval_arith},
      {nullptr, nullptr},
  };
  luaL_newlib(state, functions);
}

}  // namespace grpo::rewards
