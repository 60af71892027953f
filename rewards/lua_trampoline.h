#pragma once
// C++ functions called from Lua, without Lua errors skipping C++ destructors.
//
// Debian's Lua is compiled as C: lua_error, and with it every luaL_error, luaL_check*, unprotected
// lua_call that fails and every allocation that fails (any lua_push* of a string or table, a stack
// that must grow), longjmps to the nearest lua_pcall. The C++ frames in between are abandoned, not
// unwound: their strings, vectors and optionals leak, their locks stay held. A C++ exception thrown
// through Lua's C frames is no better (those frames have no unwind tables). So one rule holds for every
// C function Lua can call:
//
//   no Lua error is raised while an object with a non-trivial destructor is alive on any C++ frame
//   between the raise and the lua_pcall that catches it.
//
// Two shapes of function follow it:
//   - C-style: only trivially destructible locals (numbers, pointers, string_views, plain structs) on
//     every frame, so raising anywhere is harmless (Lua's own libraries are written so);
//   - C++-style: wrapped in lua_trampoline below. The function throws (LuaError for a message meant
//     for the script, any std::exception otherwise); the trampoline catches the exception, lets every
//     C++ frame unwind, and only then raises the Lua error, from a frame that owns nothing that needs
//     destroying. Inside it, Lua API calls that may raise are made before the first C++ object exists,
//     or through the helpers here: call_protected for Lua callbacks, push_protected for results,
//     lua_text_argument / lua_string_argument / lua_table_argument for arguments.
//
//   int stage_train(lua_State* L);                       // may throw; never calls luaL_error
//   luaL_Reg functions[] = {{"train", lua_trampoline<stage_train>}, ...};
//
// What the script sees is what the direct Lua error would have been: argument errors read as
// luaL_check*'s, a failing callback's error object passes through unchanged, and a memory error stays
// a memory error (status LUA_ERRMEM), so a sandbox's memory cap classifies it as before.
#include <lua.hpp>

#include <cstddef>
#include <cstdio>
#include <cstring>
#include <exception>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>

namespace grpo {

// An error for the calling Lua script: raised there with the position of the call, as error() would.
class LuaError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Lua ran out of memory (an allocation inside a protected helper failed): raised in the script as
// Lua's own memory error.
class LuaMemoryError : public LuaError {
 public:
  LuaMemoryError() : LuaError("not enough memory") {}
};

// A Lua function called through call_protected failed; what() is its error object as text. The
// trampoline raises the original error object again, unchanged (no second position prefix, a table
// stays a table).
class LuaCallbackError : public LuaError {
 public:
  using LuaError::LuaError;
};

namespace lua_detail {

// Registry slot holding the error object of the last failed call_protected until the trampoline
// re-raises it. (A function-local static of an inline function has one address in the program.)
inline void* pending_error_key() {
  static const char key = 0;
  return const_cast<char*>(&key);
}

inline int store_pending_error(lua_State* L) {
  lua_rawsetp(L, LUA_REGISTRYINDEX, pending_error_key());
  return 0;
}

// The value at the top as text without allocating in Lua (numbers are formatted here, not converted
// on the stack; no __tostring runs).
inline std::string error_object_text(lua_State* L) {
  switch (lua_type(L, -1)) {
    case LUA_TSTRING: {
      std::size_t size = 0;
      const char* text = lua_tolstring(L, -1, &size);
      return std::string(text, size);
    }
    case LUA_TNUMBER: {
      char text[64];
      if (lua_isinteger(L, -1)) {
        std::snprintf(text, sizeof text, LUA_INTEGER_FMT, static_cast<LUAI_UACINT>(lua_tointeger(L, -1)));
      } else {
        std::snprintf(text, sizeof text, LUA_NUMBER_FMT, static_cast<LUAI_UACNUMBER>(lua_tonumber(L, -1)));
      }
      return text;
    }
    default:
      return std::string("error object is a ") + luaL_typename(L, -1) + " value";
  }
}

// Pops the error object of a failed lua_pcall and throws it as a C++ exception.
[[noreturn]] inline void throw_pcall_failure(lua_State* L, int status) {
  if (status == LUA_ERRMEM) {
    lua_pop(L, 1);
    throw LuaMemoryError();
  }
  std::string message = error_object_text(L);
  lua_pop(L, 1);
  throw LuaError(message);
}

// How luaL_argerror names the function being called: from the call site when Lua knows it ("find",
// "f" for a local), `fallback` otherwise (a call through pcall, a metamethod). `index` is decremented
// for a method call, whose self Lua does not count. Reads debug information only: never raises.
inline std::string called_name(lua_State* L, int& index, const char* fallback, bool& bad_self) {
  bad_self = false;
  lua_Debug ar;
  if (!lua_getstack(L, 0, &ar) || !lua_getinfo(L, "n", &ar)) return fallback;
  if (ar.namewhat && std::strcmp(ar.namewhat, "method") == 0) {
    --index;
    bad_self = index == 0;
  }
  return ar.name ? ar.name : fallback;
}

inline int type_name_entry(lua_State* L) {
  if (luaL_getmetafield(L, 1, "__name") == LUA_TSTRING) return 1;
  lua_pushstring(L, lua_type(L, 1) == LUA_TLIGHTUSERDATA ? "light userdata" : luaL_typename(L, 1));
  return 1;
}

// The type name luaL_typeerror reports (a "__name" metafield wins), looked up in protected mode.
inline std::string argument_type_name(lua_State* L, int index) {
  if (lua_type(L, index) == LUA_TNONE) return "no value";  // nothing to push (the slot is past the top)
  if (!lua_checkstack(L, 2)) throw LuaMemoryError();
  const int absolute = lua_absindex(L, index);
  lua_pushcfunction(L, type_name_entry);
  lua_pushvalue(L, absolute);
  const int status = lua_pcall(L, 1, 1, 0);
  if (status != LUA_OK) throw_pcall_failure(L, status);
  std::string name = error_object_text(L);
  lua_pop(L, 1);
  return name;
}

// LuaError with luaL_typeerror's message for argument `index` of the running C function.
[[noreturn]] inline void throw_argument_error(lua_State* L, int index, const char* function, const char* expected) {
  const std::string got = argument_type_name(L, index);
  int shown = index;
  bool bad_self = false;
  const std::string name = called_name(L, shown, function, bad_self);
  const std::string detail = std::string(expected) + " expected, got " + got;
  if (bad_self) throw LuaError("calling '" + name + "' on bad self (" + detail + ")");
  throw LuaError("bad argument #" + std::to_string(shown) + " to '" + name + "' (" + detail + ")");
}

inline int to_string_entry(lua_State* L) {
  lua_tolstring(L, 1, nullptr);  // a number becomes a string in place
  return 1;
}

}  // namespace lua_detail

template <int (*Function)(lua_State*)>
int lua_trampoline(lua_State* L) {
  // Fixed-size and trivially destructible: the only things alive on this frame when lua_error jumps.
  char message[1024];
  enum { regular, memory, callback } kind = regular;
  try {
    return Function(L);
  } catch (const LuaMemoryError&) {
    kind = memory;
  } catch (const LuaCallbackError& e) {
    kind = callback;
    std::snprintf(message, sizeof message, "%s", e.what());
  } catch (const std::exception& e) {
    std::snprintf(message, sizeof message, "%s", e.what());
  } catch (...) {
    std::snprintf(message, sizeof message, "%s", "unknown C++ exception");
  }
  // The exception object is destroyed once its handler ends; from here on nothing needs unwinding.
  // Whatever the function left on the stack goes: a C function always has LUA_MINSTACK free slots.
  lua_settop(L, 0);
  if (kind == memory) {
    // Lua 5.4's lua_error raises a memory error (LUA_ERRMEM) when the error object is its own memory
    // error message; that string is interned and fixed, so pushing it allocates nothing.
    lua_pushliteral(L, "not enough memory");
    return lua_error(L);
  }
  if (kind == callback) {
    lua_rawgetp(L, LUA_REGISTRYINDEX, lua_detail::pending_error_key());
    if (!lua_isnil(L, -1)) {
      lua_pushnil(L);  // clearing an existing registry slot allocates nothing
      lua_rawsetp(L, LUA_REGISTRYINDEX, lua_detail::pending_error_key());
      return lua_error(L);
    }
    lua_pushstring(L, message);  // the callee's message already says where
    return lua_error(L);
  }
  luaL_where(L, 1);
  lua_pushstring(L, message);
  lua_concat(L, 2);
  return lua_error(L);
}

// lua_pcall(nargs, nresults), but a failure throws: LuaMemoryError for a memory error, otherwise
// LuaCallbackError carrying the callee's message (the error object's text, or its type when it is not
// a string or number), whose error object the trampoline re-raises unchanged. On failure the stack is
// as before the function and its arguments were pushed.
inline void call_protected(lua_State* L, int nargs, int nresults) {
  const int status = lua_pcall(L, nargs, nresults, 0);
  if (status == LUA_OK) return;
  if (status == LUA_ERRMEM) lua_detail::throw_pcall_failure(L, status);
  std::string message = lua_detail::error_object_text(L);
  // Keep the error object for the trampoline. A new registry slot may need memory, so it is stored in
  // protected mode; when even that fails, the failure is reported as the memory error it is.
  if (!lua_checkstack(L, 1)) {
    lua_pop(L, 1);
    throw LuaMemoryError();
  }
  lua_pushcfunction(L, lua_detail::store_pending_error);
  lua_insert(L, -2);
  if (lua_pcall(L, 1, 0, 0) != LUA_OK) {
    lua_pop(L, 1);
    throw LuaMemoryError();
  }
  throw LuaCallbackError(message);
}

// Runs `push(L)`, which only pushes values (lua_push*, lua_createtable, lua_setfield on what it
// pushed), in protected mode: a memory error while pushing results throws LuaMemoryError instead of
// skipping the caller's destructors. Returns how many values `push` left on the stack. `push` must
// itself hold nothing with a destructor (capture by reference).
template <typename Push>
int push_protected(lua_State* L, Push&& push) {
  using Callable = std::remove_reference_t<Push>;
  static_assert(std::is_trivially_destructible_v<Callable>, "push_protected: capture by reference");
  const lua_CFunction entry = [](lua_State* state) -> int {
    auto* callable = static_cast<Callable*>(lua_touserdata(state, 1));
    lua_settop(state, 0);
    (*callable)(state);
    return lua_gettop(state);
  };
  if (!lua_checkstack(L, 2)) throw LuaMemoryError();
  const int base = lua_gettop(L);
  lua_pushcfunction(L, entry);
  lua_pushlightuserdata(L, const_cast<void*>(static_cast<const void*>(&push)));
  const int status = lua_pcall(L, 1, LUA_MULTRET, 0);
  if (status != LUA_OK) lua_detail::throw_pcall_failure(L, status);
  return lua_gettop(L) - base;
}

// The string at `index` without copying it (numbers are converted in place, as luaL_checklstring
// does); throws LuaError with luaL_checklstring's message otherwise. The view lives as long as the
// argument stays on the stack.
inline std::string_view lua_text_argument(lua_State* L, int index, const char* function) {
  const int type = lua_type(L, index);
  if (type == LUA_TNUMBER) {
    // The conversion allocates a string: done in protected mode, then put in the argument's place.
    if (!lua_checkstack(L, 2)) throw LuaMemoryError();
    const int absolute = lua_absindex(L, index);
    lua_pushcfunction(L, lua_detail::to_string_entry);
    lua_pushvalue(L, absolute);
    const int status = lua_pcall(L, 1, 1, 0);
    if (status != LUA_OK) lua_detail::throw_pcall_failure(L, status);
    lua_replace(L, absolute);
  } else if (type != LUA_TSTRING) {
    lua_detail::throw_argument_error(L, index, function, "string");
  }
  std::size_t size = 0;
  const char* text = lua_tolstring(L, index, &size);
  return {text, size};
}

// The string at `index` as a copy; as lua_text_argument otherwise.
inline std::string lua_string_argument(lua_State* L, int index, const char* function) {
  return std::string(lua_text_argument(L, index, function));
}

// Throws LuaError with luaL_checktype's message unless the value at `index` is a table.
inline void lua_table_argument(lua_State* L, int index, const char* function) {
  if (lua_type(L, index) != LUA_TTABLE) lua_detail::throw_argument_error(L, index, function, "table");
}

// The number at `index`, or `fallback` when it is nil or absent; throws LuaError with
// luaL_optnumber's message otherwise. (Strings that read as numbers are accepted, as there.)
inline lua_Number lua_optional_number_argument(lua_State* L, int index, const char* function, lua_Number fallback) {
  if (lua_isnoneornil(L, index)) return fallback;
  int is_number = 0;
  const lua_Number number = lua_tonumberx(L, index, &is_number);  // converts a copy: allocates nothing
  if (!is_number) lua_detail::throw_argument_error(L, index, function, "number");
  return number;
}

}  // namespace grpo
