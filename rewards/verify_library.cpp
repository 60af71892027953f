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
#include "rewards/program_runner.h"
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

// Reads string field `key` of the table at 1 into `out`; false (with `why` set) when it is not a string.
bool read_string_field(lua_State* state, int table, const char* key, std::string& out, bool required, char* why) {
  const int type = lua_getfield(state, table, key);
  if (type == LUA_TSTRING) {
    std::size_t size = 0;
    const char* text = lua_tolstring(state, -1, &size);
    out.assign(text, size);
  } else if (type != LUA_TNIL || required) {
    std::snprintf(why, 200, "verify.run_program: '%s' must be a string", key);
    lua_pop(state, 1);
    return false;
  }
  lua_pop(state, 1);
  return true;
}

// verify.run_program{language=, source=, tests={...}, time_limit=, memory_limit=}
//   -> {passed=, total=, verdicts={"passed"|"wrong_answer"|...}, compile_output=}
// A test is {input=, output=} (stdin/stdout) or a string of assertion code appended to the source.
int verify_run_program(lua_State* state) {
  luaL_checktype(state, 1, LUA_TTABLE);
  thread_local ProgramRequest request;
  thread_local ProgramResult result;
  char why[200] = "";
  bool ok = true;
  request = ProgramRequest{};
  ok = read_string_field(state, 1, "language", request.language, true, why) &&
       read_string_field(state, 1, "source", request.source, true, why);
  if (ok) {
    lua_getfield(state, 1, "time_limit");
    if (lua_type(state, -1) == LUA_TNUMBER) request.time_limit = lua_tonumber(state, -1);
    lua_getfield(state, 1, "memory_limit");
    if (lua_type(state, -1) == LUA_TNUMBER) request.memory_limit_mb = lua_tonumber(state, -1);
    lua_pop(state, 2);
    if (lua_getfield(state, 1, "tests") != LUA_TTABLE) {
      std::snprintf(why, sizeof why, "verify.run_program: 'tests' must be a list");
      ok = false;
    }
  }
  if (ok) {
    const int tests = lua_gettop(state);
    const lua_Integer count = static_cast<lua_Integer>(lua_rawlen(state, tests));
    for (lua_Integer i = 1; i <= count && ok; ++i) {
      ProgramTest& test = request.tests.emplace_back();
      const int type = lua_rawgeti(state, tests, i);
      if (type == LUA_TSTRING) {
        std::size_t size = 0;
        const char* text = lua_tolstring(state, -1, &size);
        test.assertion.assign(text, size);
      } else if (type == LUA_TTABLE) {
        const int entry = lua_gettop(state);
        ok = read_string_field(state, entry, "input", test.input, false, why) &&
             read_string_field(state, entry, "output", test.expected_output, true, why);
      } else {
        std::snprintf(why, sizeof why, "verify.run_program: test %d must be a table {input=, output=} or a string",
                      static_cast<int>(i));
        ok = false;
      }
      lua_pop(state, 1);
    }
    lua_pop(state, 1);
  }
  if (!ok) return luaL_error(state, "%s", why);
  guarded(state, [&] { result = run_program(request); });
  lua_createtable(state, 0, 4);
  lua_pushinteger(state, result.passed);
  lua_setfield(state, -2, "passed");
  lua_pushinteger(state, result.total);
  lua_setfield(state, -2, "total");
  lua_createtable(state, static_cast<int>(result.verdicts.size()), 0);
  for (std::size_t i = 0; i < result.verdicts.size(); ++i) {
    lua_pushstring(state, to_string(result.verdicts[i]));
    lua_rawseti(state, -2, static_cast<lua_Integer>(i) + 1);
  }
  lua_setfield(state, -2, "verdicts");
  lua_pushlstring(state, result.compile_output.data(), result.compile_output.size());
  lua_setfield(state, -2, "compile_output");
  return 1;
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
      {"run_program", verify_run_program},
      {nullptr, nullptr},
  };
  luaL_newlib(state, functions);
}

}  // namespace grpo::rewards
