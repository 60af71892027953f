#include "rewards/sandbox_library.h"

// Every function here is C-style (see rewards/lua_trampoline.h): only pointers, sizes and Lua stack
// indices live on its frame, so luaL_check*, luaL_error, the memory errors of lua_push* and the errors
// of the module loader that require calls may jump over it without leaving anything undestroyed.
// Nothing here needs a C++ object; a function that does is written C++-style behind lua_trampoline,
// as the verify library is.

#include <lua.hpp>

#include <cstring>

#include "rewards/bounded_pattern.h"
#include "rewards/lua_sandbox.h"
#include "rewards/rule_library.h"
#include "rewards/verify_library.h"

namespace grpo::rewards {
namespace {

constexpr const char* kEnvironmentMeta = "grpo.environment";  // registry: metatable of chunk globals
constexpr const char* kLoadedModules = "grpo.loaded";         // registry: require's cache

const char* const kBaseFunctions[] = {"assert",   "error",  "getmetatable", "ipairs",
                                      "next",     "pairs",  "rawequal",     "rawget",
                                      "rawlen",   "select", "tonumber",     "tostring",
                                      "type",     "pcall",  "xpcall",       "_VERSION"};
const char* const kStringFunctions[] = {"byte",  "char",    "format", "len",      "lower", "reverse",
                                        "sub",   "upper",   "pack",   "packsize", "unpack", "rep"};
const char* const kTableFunctions[] = {"concat", "insert", "pack", "remove", "sort", "unpack", "move"};
const char* const kCoroutineFunctions[] = {"create", "isyieldable", "resume", "running",
                                           "status", "wrap",        "yield",  "close"};

// Trusted prelude: pcall, xpcall, coroutine.resume and coroutine.close are the only places where
// Lua code can catch an error; once the call's budget is spent they pass the error on. Written in Lua
// so the wrappers stay yieldable like the originals.
constexpr const char* kCatchWrappers = R"lua(
local base, co, expired, error = ...
local raw_pcall, raw_xpcall, raw_resume, raw_close = base.pcall, base.xpcall, co.resume, co.close
local function pass(...)
  if expired() then error("limit exceeded", 0) end
  return ...
end
base.pcall = function(...) return pass(raw_pcall(...)) end
-- An error raised by the count hook runs the message handler with hooks disabled (Lua restores
-- them only when unwinding), so a looping handler would never be stopped: once the budget is spent
-- the user's handler is skipped.
base.xpcall = function(f, handler, ...)
  if type(handler) ~= "function" then error("bad argument #2 to 'xpcall' (function expected)", 2) end
  local function guarded_handler(e)
    if expired() then return e end
    return handler(e)
  end
  return pass(raw_xpcall(f, guarded_handler, ...))
end
co.resume = function(...) return pass(raw_resume(...)) end
co.close = function(...) return pass(raw_close(...)) end
)lua";

int read_only_error(lua_State* state) {
  return luaL_error(state, "the rule library is read-only (tried to set '%s')",
                    lua_type(state, 2) == LUA_TSTRING ? lua_tostring(state, 2) : "?");
}

// Replaces the table at the top with an empty proxy that reads through to it and refuses writes,
// and whose metatable cannot be read or replaced.
void freeze_top(lua_State* state) {
  lua_newtable(state);                 // real proxy
  lua_createtable(state, 0, 3);        // real proxy meta
  lua_pushvalue(state, -3);
  lua_setfield(state, -2, "__index");
  lua_pushcfunction(state, read_only_error);
  lua_setfield(state, -2, "__newindex");
  lua_pushliteral(state, "locked");
  lua_setfield(state, -2, "__metatable");
  lua_setmetatable(state, -2);         // real proxy
  lua_remove(state, -2);               // proxy
}

// Copies the named fields of the table at `from` into the table at the top.
template <std::size_t N>
void copy_fields(lua_State* state, int from, const char* const (&names)[N]) {
  for (const char* name : names) {
    lua_getfield(state, from, name);
    lua_setfield(state, -2, name);
  }
}

int expired(lua_State* state) {
  lua_pushboolean(state, LuaSandbox::expired(state));
  return 1;
}

// setmetatable that refuses __gc: Lua runs finalisers with hooks off, so a looping __gc would hang
// the host. An object is marked for finalisation only if __gc is present when the metatable is set,
// so checking here is enough.
int safe_setmetatable(lua_State* state) {
  const int type = lua_type(state, 2);
  luaL_checktype(state, 1, LUA_TTABLE);
  luaL_argexpected(state, type == LUA_TNIL || type == LUA_TTABLE, 2, "nil or table");
  if (type == LUA_TTABLE) {
    lua_pushliteral(state, "__gc");
    if (lua_rawget(state, 2) != LUA_TNIL) {
      return luaL_error(state, "__gc metamethods are not allowed in reward rules");
    }
    lua_pop(state, 1);
  }
  if (luaL_getmetafield(state, 1, "__metatable") != LUA_TNIL) {
    return luaL_error(state, "cannot change a protected metatable");
  }
  lua_settop(state, 2);
  lua_setmetatable(state, 1);
  return 1;
}

// load(text [, chunkname [, mode [, env]]]): text only, whatever `mode` says; by default the chunk
// gets fresh globals, so loaded code cannot write into anything shared.
int safe_load(lua_State* state) {
  std::size_t size = 0;
  const char* text = luaL_checklstring(state, 1, &size);
  const char* chunkname = luaL_optstring(state, 2, "=(load)");
  const bool has_env = lua_gettop(state) >= 4;
  if (luaL_loadbufferx(state, text, size, chunkname, "t") != LUA_OK) {
    lua_pushnil(state);
    lua_insert(state, -2);
    return 2;  // nil, message: what load returns
  }
  if (has_env) {
    lua_pushvalue(state, 4);
  } else {
    push_chunk_environment(state);
  }
  lua_setupvalue(state, -2, 1);
  return 1;
}

// require(name): modules of the shipped rule library only, each loaded once per state.
int sandbox_require(lua_State* state) {
  std::size_t size = 0;
  const char* name = luaL_checklstring(state, 1, &size);
  lua_settop(state, 1);
  luaL_getsubtable(state, LUA_REGISTRYINDEX, kLoadedModules);  // 2
  const int cached = lua_getfield(state, 2, name);
  if (cached == LUA_TBOOLEAN && !lua_toboolean(state, -1)) {
    return luaL_error(state, "require('%s'): circular require", name);
  }
  if (cached != LUA_TNIL) return 1;
  lua_pop(state, 1);
  const RuleLibraryModule* module = find_rule_library_module(std::string_view(name, size));
  if (!module) {
    return luaL_error(state, "require('%s'): no such module in the rule library (rules can only "
                             "require the shipped modules)", name);
  }
  lua_pushvalue(state, 1);
  lua_pushboolean(state, 0);
  lua_rawset(state, 2);  // loading
  lua_pushfstring(state, "@rewards/lua/%s.lua", name);
  if (luaL_loadbufferx(state, module->source.data(), module->source.size(), lua_tostring(state, -1),
                       "t") != LUA_OK) {
    return lua_error(state);
  }
  push_chunk_environment(state);
  lua_setupvalue(state, -2, 1);
  lua_pushvalue(state, 1);
  if (lua_pcall(state, 1, 1, 0) != LUA_OK) {
    // Forget the "loading" mark, or every later require of this module would report a circular
    // require; then pass the loader's error on unchanged (lua_error keeps a memory error one). Setting
    // an existing key with rawset allocates nothing.
    lua_pushvalue(state, 1);
    lua_pushnil(state);
    lua_rawset(state, 2);
    return lua_error(state);
  }
  if (lua_isnil(state, -1)) {
    lua_pop(state, 1);
    lua_pushboolean(state, 1);
  }
  lua_pushvalue(state, -1);
  lua_setfield(state, 2, name);
  return 1;
}

// string.rep and table.move loop in C for as long as asked, and string.rep("", 1e15) or a table.move
// of nils allocates nothing, so the memory cap never stops them: they pay for their iterations from
// the instruction budget first. (A non-empty string.rep is bounded by the memory cap instead.)
int charged_rep(lua_State* state) {
  std::size_t size = 0, separator_size = 0;
  luaL_checklstring(state, 1, &size);
  const lua_Integer count = luaL_checkinteger(state, 2);
  luaL_optlstring(state, 3, "", &separator_size);
  if (count > 0 && size + separator_size == 0) LuaSandbox::charge(state, count);
  lua_pushvalue(state, lua_upvalueindex(1));
  lua_insert(state, 1);
  lua_call(state, lua_gettop(state) - 1, 1);
  return 1;
}

int charged_move(lua_State* state) {
  const lua_Integer first = luaL_checkinteger(state, 2);
  const lua_Integer last = luaL_checkinteger(state, 3);
  if (last >= first) {
    // Overflow-safe: a span wider than the budget is charged as the whole budget.
    const lua_Integer span = (first < 0 && last > LUA_MAXINTEGER + first) ? LUA_MAXINTEGER
                                                                         : last - first + 1;
    LuaSandbox::charge(state, span);
  }
  lua_pushvalue(state, lua_upvalueindex(1));
  lua_insert(state, 1);
  lua_call(state, lua_gettop(state) - 1, 1);
  return 1;
}

// Wraps field `name` of the table at the top in `wrapper`, the original as its upvalue.
void wrap_field(lua_State* state, const char* name, lua_CFunction wrapper) {
  lua_getfield(state, -1, name);
  lua_pushcclosure(state, wrapper, 1);
  lua_setfield(state, -2, name);
}

}  // namespace

int open_sandbox_library(lua_State* state) {
  // The real libraries, opened into tables only this function sees.
  luaL_requiref(state, "_G", luaopen_base, 0);               // 2: real globals
  luaL_requiref(state, "string", luaopen_string, 0);         // 3 (also the strings' metatable)
  luaL_requiref(state, "table", luaopen_table, 0);           // 4
  luaL_requiref(state, "math", luaopen_math, 0);             // 5
  luaL_requiref(state, "utf8", luaopen_utf8, 0);             // 6
  luaL_requiref(state, "coroutine", luaopen_coroutine, 0);   // 7
  const int real_globals = 2, real_string = 3, real_table = 4, real_math = 5, real_utf8 = 6,
            real_coroutine = 7;

  lua_newtable(state);  // 8: base, what chunk globals read through to
  const int base = lua_gettop(state);
  copy_fields(state, real_globals, kBaseFunctions);
  lua_pushcfunction(state, safe_setmetatable);
  lua_setfield(state, base, "setmetatable");
  lua_pushcfunction(state, safe_load);
  lua_setfield(state, base, "load");
  lua_pushcfunction(state, sandbox_require);
  lua_setfield(state, base, "require");

  lua_newtable(state);  // 9: coroutine
  copy_fields(state, real_coroutine, kCoroutineFunctions);
  const int coroutine = lua_gettop(state);

  // Catch points re-raise a spent budget.
  if (luaL_loadbufferx(state, kCatchWrappers, std::strlen(kCatchWrappers), "=sandbox", "t") != LUA_OK) {
    return lua_error(state);
  }
  lua_pushvalue(state, base);
  lua_pushvalue(state, coroutine);
  lua_pushcfunction(state, expired);
  lua_getfield(state, real_globals, "error");
  lua_call(state, 4, 0);
  freeze_top(state);
  lua_setfield(state, base, "coroutine");

  lua_newtable(state);  // string, with budget-charged pattern matching and rep
  copy_fields(state, real_string, kStringFunctions);
  wrap_field(state, "rep", charged_rep);
  install_bounded_patterns(state);
  // Method calls on strings ("x"):find(...) go through the strings' metatable: point it at the
  // same safe table and hide it from getmetatable.
  lua_pushliteral(state, "");
  lua_getmetatable(state, -1);
  lua_pushvalue(state, -3);
  lua_setfield(state, -2, "__index");
  lua_pushliteral(state, "locked");
  lua_setfield(state, -2, "__metatable");
  lua_pop(state, 2);
  freeze_top(state);
  lua_setfield(state, base, "string");

  lua_newtable(state);
  copy_fields(state, real_table, kTableFunctions);
  wrap_field(state, "move", charged_move);
  freeze_top(state);
  lua_setfield(state, base, "table");

  lua_pushvalue(state, real_math);
  freeze_top(state);
  lua_setfield(state, base, "math");

  lua_pushvalue(state, real_utf8);
  freeze_top(state);
  lua_setfield(state, base, "utf8");

  open_verify_library(state);
  freeze_top(state);
  lua_setfield(state, base, "verify");

  // Chunk globals: reads fall through to base; the metatable is hidden so base stays unreachable.
  lua_createtable(state, 0, 2);
  lua_pushvalue(state, base);
  lua_setfield(state, -2, "__index");
  lua_pushliteral(state, "locked");
  lua_setfield(state, -2, "__metatable");
  lua_setfield(state, LUA_REGISTRYINDEX, kEnvironmentMeta);

  // The real globals stay reachable only from C; drop what could load files if ever exposed.
  for (const char* name : {"dofile", "loadfile", "load", "collectgarbage", "print", "warn"}) {
    lua_pushnil(state);
    lua_setfield(state, real_globals, name);
  }
  return 0;
}

void push_chunk_environment(lua_State* state) {
  lua_createtable(state, 0, 4);
  lua_getfield(state, LUA_REGISTRYINDEX, kEnvironmentMeta);
  lua_setmetatable(state, -2);
}

}  // namespace grpo::rewards
