#pragma once
// C++ functions called from Lua, without Lua errors skipping C++ destructors.
//
// Debian's Lua is compiled as C: lua_error, and with it every luaL_error, luaL_check* and unprotected
// lua_call that fails, longjmps to the nearest lua_pcall. The C++ frames in between are abandoned, not
// unwound: their strings, vectors and tensors leak, their locks stay held. So the C++ code behind a Lua
// function never raises a Lua error itself. It throws (LuaError for a message meant for the script,
// any std::exception otherwise); the trampoline below catches the exception, lets every C++ frame
// unwind, and only then raises the Lua error, from a frame that owns nothing that needs destroying.
//
//   int stage_train(lua_State* L);                       // may throw; never calls luaL_error
//   luaL_Reg functions[] = {{"train", lua_trampoline<stage_train>}, ...};
//
// Inside such a function, call Lua back only through call_protected (a failing callback becomes a
// LuaError), and check arguments with the throwing helpers here instead of luaL_check*.
#include <lua.hpp>

#include <cstddef>
#include <cstdio>
#include <exception>
#include <stdexcept>
#include <string>

namespace grpo {

// An error for the calling Lua script: raised there with the position of the call, as error() would.
class LuaError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

template <int (*Function)(lua_State*)>
int lua_trampoline(lua_State* L) {
  // Fixed-size and trivially destructible: the only thing alive on this frame when lua_error jumps.
  char message[1024];
  try {
    return Function(L);
  } catch (const std::exception& e) {
    std::snprintf(message, sizeof message, "%s", e.what());
  } catch (...) {
    std::snprintf(message, sizeof message, "%s", "unknown C++ exception");
  }
  // The exception object is destroyed once its handler ends; from here on nothing needs unwinding.
  luaL_where(L, 1);
  lua_pushstring(L, message);
  lua_concat(L, 2);
  return lua_error(L);
}

// lua_pcall(nargs, nresults), but a failure throws LuaError carrying the callee's message (the error
// object's text, or its type when it is not a string or number) and leaves the stack as before the
// function and its arguments were pushed.
inline void call_protected(lua_State* L, int nargs, int nresults) {
  if (lua_pcall(L, nargs, nresults, 0) == LUA_OK) return;
  std::string message = lua_type(L, -1) == LUA_TSTRING || lua_type(L, -1) == LUA_TNUMBER
                            ? std::string(lua_tostring(L, -1))
                            : std::string("error object is a ") + luaL_typename(L, -1) + " value";
  lua_pop(L, 1);
  throw LuaError(message);
}

// The string at `index` (numbers are converted, as luaL_checkstring does); throws LuaError naming the
// argument otherwise.
inline std::string lua_string_argument(lua_State* L, int index, const char* function) {
  std::size_t size = 0;
  const char* text = lua_type(L, index) == LUA_TSTRING || lua_type(L, index) == LUA_TNUMBER ? lua_tolstring(L, index, &size)
                                                                                               : nullptr;
  if (!text)
    throw LuaError(std::string("bad argument #") + std::to_string(index) + " to '" + function + "' (string expected, got " +
                   luaL_typename(L, index) + ")");
  return std::string(text, size);
}

// Throws LuaError naming the argument unless the value at `index` is a table.
inline void lua_table_argument(lua_State* L, int index, const char* function) {
  if (lua_type(L, index) != LUA_TTABLE)
    throw LuaError(std::string("bad argument #") + std::to_string(index) + " to '" + function + "' (table expected, got " +
                   luaL_typename(L, index) + ")");
}

}  // namespace grpo
