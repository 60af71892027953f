#include "rewards/verify_library.h"

// Every verify function computes with C++ objects (strings, optionals, the program request), so each
// is C++-style (rewards/lua_trampoline.h): it reads its arguments with the throwing helpers, computes
// in C++ that may throw, and pushes its results through push_protected; errors become exceptions that
// lua_trampoline raises as Lua errors once every C++ frame has unwound. A rule that calls them with
// bad arguments a million times leaks nothing, and sees luaL_check*'s messages as before.
//
// verify.run_program also reads a table the rule built: lua_getfield may run the rule's metamethods
// (which may raise errors, or call verify.run_program again) and allocate, so the table is first read
// into plain Lua values while no C++ object is alive, and only then copied into the C++ request.

#include <lua.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "rewards/arith_eval.h"
#include "rewards/completion_parts.h"
#include "rewards/lua_trampoline.h"
#include "rewards/math_equal.h"
#include "rewards/program_runner.h"
#include "rewards/script_ratio.h"
#include "rewards/text_extract.h"

namespace grpo::rewards {
namespace {

int push_optional_text(lua_State* state, const std::optional<std::string>& text) {
  return push_protected(state, [&](lua_State* L) {
    if (text) {
      lua_pushlstring(L, text->data(), text->size());
    } else {
      lua_pushnil(L);
    }
  });
}

int verify_extract_boxed(lua_State* state) {
  const std::string_view text = lua_text_argument(state, 1, "verify.extract_boxed");
  return push_optional_text(state, extract_boxed(text));
}

int verify_extract_tag(lua_State* state) {
  const std::string_view text = lua_text_argument(state, 1, "verify.extract_tag");
  const std::string_view tag = lua_text_argument(state, 2, "verify.extract_tag");
  return push_optional_text(state, extract_tag(text, tag));
}

// verify.extract_answer(text [, last_number]) -> the final answer of free text (rewards/text_extract.h),
// or nil; last_number = false leaves out the last-number fallback.
int verify_extract_answer(lua_State* state) {
  const std::string_view text = lua_text_argument(state, 1, "verify.extract_answer");
  const bool number_fallback = lua_isnoneornil(state, 2) || lua_toboolean(state, 2);
  return push_optional_text(state, extract_answer(text, number_fallback));
}

// The last number as Lua reads it: an integer when the text is one that fits, a float otherwise.
int verify_last_number(lua_State* state) {
  const std::string_view text = lua_text_argument(state, 1, "verify.last_number");
  const std::optional<std::string> number = last_number(text);
  return push_protected(state, [&](lua_State* L) {
    if (!number || lua_stringtonumber(L, number->c_str()) == 0) lua_pushnil(L);
  });
}

int verify_script_ratio(lua_State* state) {
  const std::string_view text = lua_text_argument(state, 1, "verify.script_ratio");
  const std::string_view script = lua_text_argument(state, 2, "verify.script_ratio");
  const std::optional<double> ratio = script_ratio(text, script);
  if (!ratio) throw LuaError("verify.script_ratio: unknown script '" + std::string(script) + "'");
  lua_pushnumber(state, *ratio);  // a number fits the stack slots every C function has: no allocation
  return 1;
}

// --- Parts of a completion (rewards/completion_parts.h) --------------------------------------------

// The end-of-thinking marker at `index`: "</think>" when absent or nil.
std::string_view marker_argument(lua_State* state, int index, const char* function) {
  if (lua_isnoneornil(state, index)) return kDefaultThinkingMarker;
  const std::string_view marker = lua_text_argument(state, index, function);
  if (marker.empty()) throw LuaError(std::string(function) + ": the end-of-thinking marker is empty");
  return marker;
}

int push_text(lua_State* state, std::string_view text) {
  return push_protected(state, [&](lua_State* L) { lua_pushlstring(L, text.data(), text.size()); });
}

// verify.reasoning(text [, marker]) -> the chain of thought (the whole text without the marker).
int verify_reasoning(lua_State* state) {
  const std::string_view text = lua_text_argument(state, 1, "verify.reasoning");
  return push_text(state, split_reasoning(text, marker_argument(state, 2, "verify.reasoning")).reasoning);
}

// verify.summary(text [, marker]) -> what follows the marker ("" without it).
int verify_summary(lua_State* state) {
  const std::string_view text = lua_text_argument(state, 1, "verify.summary");
  return push_text(state, split_reasoning(text, marker_argument(state, 2, "verify.summary")).summary);
}

// verify.split_reasoning(text [, marker]) -> reasoning, summary, whether the marker was there.
int verify_split_reasoning(lua_State* state) {
  const std::string_view text = lua_text_argument(state, 1, "verify.split_reasoning");
  const CompletionParts parts = split_reasoning(text, marker_argument(state, 2, "verify.split_reasoning"));
  return push_protected(state, [&](lua_State* L) {
    lua_pushlstring(L, parts.reasoning.data(), parts.reasoning.size());
    lua_pushlstring(L, parts.summary.data(), parts.summary.size());
    lua_pushboolean(L, parts.has_marker);
  });
}

// The target language at `index`: a script name, {chars = "..."} or {words = {...}}. The table is read
// with raw, non-raising calls only (lua_next, lua_rawgeti), so C++ objects may be alive meanwhile.
LanguageTarget language_target_argument(lua_State* state, int index, const char* function) {
  const std::string name = function;
  if (lua_type(state, index) == LUA_TSTRING) {
    const std::string_view script = lua_text_argument(state, index, function);
    std::optional<LanguageTarget> target = script_target(script);
    if (!target) throw LuaError(name + ": unknown script '" + std::string(script) + "'");
    return *target;
  }
  if (lua_type(state, index) != LUA_TTABLE)
    throw LuaError(name + ": the target language must be a script name, {chars = \"...\"} or {words = {...}}");
  if (!lua_checkstack(state, 3)) throw LuaMemoryError();
  const int table = lua_absindex(state, index);
  LanguageTarget target;
  bool given = false;
  lua_pushnil(state);
  while (lua_next(state, table) != 0) {
    const std::string_view key = lua_type(state, -2) == LUA_TSTRING ? std::string_view(lua_tostring(state, -2)) : "";
    if (key == "chars" && lua_type(state, -1) == LUA_TSTRING) {
      std::size_t size = 0;
      const char* chars = lua_tolstring(state, -1, &size);
      if (size == 0) {
        lua_pop(state, 2);
        throw LuaError(name + ": {chars = ...} is empty");
      }
      target.chars = chars_target(std::string_view(chars, size)).chars;
      given = true;
    } else if (key == "words" && lua_type(state, -1) == LUA_TTABLE) {
      const lua_Unsigned count = lua_rawlen(state, -1);
      for (lua_Unsigned i = 1; i <= count; ++i) {
        if (lua_rawgeti(state, -1, static_cast<lua_Integer>(i)) == LUA_TSTRING) {
          std::size_t size = 0;
          const char* word = lua_tolstring(state, -1, &size);
          target.words.emplace(word, size);
        }
        lua_pop(state, 1);
      }
      if (target.words.empty()) {
        lua_pop(state, 2);
        throw LuaError(name + ": {words = {...}} holds no word");
      }
      given = true;
    } else {
      lua_pop(state, 2);
      throw LuaError(name + ": the target table takes chars = \"...\" (a string) or words = {...} (a list of strings)");
    }
    lua_pop(state, 1);
  }
  if (!given) throw LuaError(name + ": the target table is empty (give chars = \"...\" or words = {...})");
  if (!target.chars.empty() && !target.words.empty()) throw LuaError(name + ": give chars or words, not both");
  return target;
}

// verify.language_share(text, target) -> share of the words in the target language.
int verify_language_share(lua_State* state) {
  const std::string_view text = lua_text_argument(state, 1, "verify.language_share");
  const LanguageTarget target = language_target_argument(state, 2, "verify.language_share");
  lua_pushnumber(state, language_share(text, target));
  return 1;
}

// verify.language_consistency(text, target [, marker]) -> language_share of the reasoning part.
int verify_language_consistency(lua_State* state) {
  const std::string_view text = lua_text_argument(state, 1, "verify.language_consistency");
  const LanguageTarget target = language_target_argument(state, 2, "verify.language_consistency");
  const std::string_view marker = marker_argument(state, 3, "verify.language_consistency");
  lua_pushnumber(state, language_share(split_reasoning(text, marker).reasoning, target));
  return 1;
}

// verify.math_equal(predicted, gold [, relative_tolerance]) -> boolean. A non-string answer (nil when
// nothing was extracted) is simply not equal.
int verify_math_equal(lua_State* state) {
  if (lua_type(state, 1) != LUA_TSTRING && lua_type(state, 1) != LUA_TNUMBER) {
    lua_pushboolean(state, 0);
    return 1;
  }
  const std::string_view predicted = lua_text_argument(state, 1, "verify.math_equal");
  const std::string_view gold = lua_text_argument(state, 2, "verify.math_equal");
  MathEqualOptions options;
  options.relative_tolerance =
      lua_optional_number_argument(state, 3, "verify.math_equal", options.relative_tolerance);
  lua_pushboolean(state, math_equal(predicted, gold, options));
  return 1;
}

// verify.eval_arith(expression) -> value, exact ("p/q" or "n"); or nil, reason. The value is an
// integer when the exact result is one, a float otherwise.
int verify_eval_arith(lua_State* state) {
  const std::string_view expression = lua_text_argument(state, 1, "verify.eval_arith");
  const ArithResult result = eval_arith(expression);
  const std::string text = result.value ? result.value->to_string() : result.error;
  return push_protected(state, [&](lua_State* L) {
    if (!result.value) {
      lua_pushnil(L);
    } else if (result.value->is_integer()) {
      lua_pushinteger(L, result.value->numerator());
    } else {
      lua_pushnumber(L, result.value->to_double());
    }
    lua_pushlstring(L, text.data(), text.size());
  });
}

// --- verify.run_program --------------------------------------------------------------------------

// Stack slots of the request once collect_program_request has read it.
constexpr int kRequest = 1, kLanguage = 2, kSource = 3, kTimeLimit = 4, kMemoryLimit = 5, kTests = 6,
              kFlatTests = 7;

// Pushes field `key` of the request (or test) table at `table`: a string, or nil when not `required`.
void push_string_field(lua_State* state, int table, const char* key, bool required) {
  const int type = lua_getfield(state, table, key);
  if (type != LUA_TSTRING && (type != LUA_TNIL || required)) {
    lua_pop(state, 1);
    throw LuaError(std::string("verify.run_program: '") + key + "' must be a string");
  }
}

// Reads the request table with Lua calls only (they may raise: nothing with a destructor is alive
// here until a LuaError is thrown). Leaves the language, source, limits and tests at the slots above;
// kFlatTests is a fresh list with two strings per test: input and expected output, or the assertion
// and false. Returns the number of tests.
lua_Integer collect_program_request(lua_State* state) {
  lua_table_argument(state, kRequest, "verify.run_program");
  lua_settop(state, kRequest);
  push_string_field(state, kRequest, "language", true);
  push_string_field(state, kRequest, "source", true);
  lua_getfield(state, kRequest, "time_limit");
  lua_getfield(state, kRequest, "memory_limit");
  if (lua_getfield(state, kRequest, "tests") != LUA_TTABLE) throw LuaError("verify.run_program: 'tests' must be a list");
  const lua_Integer count = static_cast<lua_Integer>(lua_rawlen(state, kTests));
  lua_createtable(state, static_cast<int>(count < 1'000'000 ? 2 * count : 0), 0);
  for (lua_Integer i = 1; i <= count; ++i) {
    const int type = lua_rawgeti(state, kTests, i);
    if (type == LUA_TSTRING) {
      lua_rawseti(state, kFlatTests, 2 * i - 1);
      lua_pushboolean(state, 0);
      lua_rawseti(state, kFlatTests, 2 * i);
    } else if (type == LUA_TTABLE) {
      const int entry = lua_gettop(state);
      push_string_field(state, entry, "input", false);
      if (lua_isnil(state, -1)) {
        lua_pop(state, 1);
        lua_pushliteral(state, "");
      }
      lua_rawseti(state, kFlatTests, 2 * i - 1);
      push_string_field(state, entry, "output", true);
      lua_rawseti(state, kFlatTests, 2 * i);
      lua_pop(state, 1);
    } else {
      throw LuaError("verify.run_program: test " + std::to_string(i) +
                     " must be a table {input=, output=} or a string");
    }
  }
  luaL_checkstack(state, 2, "verify.run_program");  // for reading kFlatTests back without allocating
  return count;
}

// The string at a stack slot (a string by construction). Allocates in C++ only.
std::string stack_string(lua_State* state, int index) {
  std::size_t size = 0;
  const char* text = lua_tolstring(state, index, &size);
  return std::string(text, size);
}

// verify.run_program{language=, source=, tests={...}, time_limit=, memory_limit=}
//   -> {passed=, total=, verdicts={"passed"|"wrong_answer"|...}, compile_output=}
// A test is {input=, output=} (stdin/stdout) or a string of assertion code appended to the source.
int verify_run_program(lua_State* state) {
  const lua_Integer count = collect_program_request(state);
  // From here on only non-raising Lua calls (raw reads of strings and numbers already on the stack).
  ProgramRequest request;
  request.language = stack_string(state, kLanguage);
  request.source = stack_string(state, kSource);
  if (lua_type(state, kTimeLimit) == LUA_TNUMBER) request.time_limit = lua_tonumber(state, kTimeLimit);
  if (lua_type(state, kMemoryLimit) == LUA_TNUMBER) request.memory_limit_mb = lua_tonumber(state, kMemoryLimit);
  for (lua_Integer i = 1; i <= count; ++i) {
    ProgramTest& test = request.tests.emplace_back();
    lua_rawgeti(state, kFlatTests, 2 * i - 1);
    const bool assertion = lua_rawgeti(state, kFlatTests, 2 * i) != LUA_TSTRING;
    if (assertion) {
      test.assertion = stack_string(state, -2);
    } else {
      test.input = stack_string(state, -2);
      test.expected_output = stack_string(state, -1);
    }
    lua_pop(state, 2);
  }
  const ProgramResult result = run_program(request);
  return push_protected(state, [&](lua_State* L) {
    lua_createtable(L, 0, 4);
    lua_pushinteger(L, result.passed);
    lua_setfield(L, -2, "passed");
    lua_pushinteger(L, result.total);
    lua_setfield(L, -2, "total");
    lua_createtable(L, static_cast<int>(result.verdicts.size()), 0);
    for (std::size_t i = 0; i < result.verdicts.size(); ++i) {
      lua_pushstring(L, to_string(result.verdicts[i]));
      lua_rawseti(L, -2, static_cast<lua_Integer>(i) + 1);
    }
    lua_setfield(L, -2, "verdicts");
    lua_pushlstring(L, result.compile_output.data(), result.compile_output.size());
    lua_setfield(L, -2, "compile_output");
  });
}

}  // namespace

void open_verify_library(lua_State* state) {
  const luaL_Reg functions[] = {
      {"extract_boxed", lua_trampoline<verify_extract_boxed>},
      {"extract_tag", lua_trampoline<verify_extract_tag>},
      {"extract_answer", lua_trampoline<verify_extract_answer>},
      {"last_number", lua_trampoline<verify_last_number>},
      {"script_ratio", lua_trampoline<verify_script_ratio>},
      {"reasoning", lua_trampoline<verify_reasoning>},
      {"summary", lua_trampoline<verify_summary>},
      {"split_reasoning", lua_trampoline<verify_split_reasoning>},
      {"language_share", lua_trampoline<verify_language_share>},
      {"language_consistency", lua_trampoline<verify_language_consistency>},
      {"math_equal", lua_trampoline<verify_math_equal>},
      {"eval_arith", lua_trampoline<verify_eval_arith>},
      {"run_program", lua_trampoline<verify_run_program>},
      {nullptr, nullptr},
  };
  luaL_newlib(state, functions);
}

}  // namespace grpo::rewards
