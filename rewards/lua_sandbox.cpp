#include "rewards/lua_sandbox.h"

// The C functions here that Lua calls (load_entry, panic, the count hook and charge, which C functions
// of the sandbox library call) are C-style (see rewards/lua_trampoline.h): they raise Lua errors, so
// they hold no C++ object. The limit errors that charge raises are sticky (expired_), so a rule that
// catches one with pcall, or a protected call inside a C++ built-in, only delays it.

#include <fmt/core.h>
#include <lua.hpp>

#include <cstdio>
#include <cstdlib>
#include <stdexcept>

#include "rewards/sandbox_library.h"

namespace grpo::rewards {
namespace {

// The hook runs every this many VM instructions: often enough that a spent budget stops a loop
// within microseconds, rarely enough that its cost (one clock read) is invisible.
constexpr int kHookInterval = 1000;

// A Lua error outside protected mode would longjmp into nowhere; all host code runs protected, so
// reaching the panic handler is a bug in this file, and stopping loudly beats undefined behaviour.
int panic(lua_State* state) {
  const char* message = lua_type(state, -1) == LUA_TSTRING ? lua_tostring(state, -1) : "?";
  std::fprintf(stderr, "grpo: unprotected Lua error in the reward sandbox: %s\n", message);
  std::abort();
}

// The error object as text without running any rule code (no __tostring: it could loop).
std::string error_text(lua_State* state) {
  switch (lua_type(state, -1)) {
    case LUA_TSTRING: {
      std::size_t size = 0;
      const char* text = lua_tolstring(state, -1, &size);
      return std::string(text, size);
    }
    case LUA_TNUMBER:
      return lua_isinteger(state, -1) ? std::to_string(lua_tointeger(state, -1))
                                      : fmt::format("{}", lua_tonumber(state, -1));
    default:
      return fmt::format("error object is a {} value", luaL_typename(state, -1));
  }
}

struct LoadRequest {
  std::string_view source;
  const std::string* chunkname;
};

int load_entry(lua_State* state) {
  auto* request = static_cast<LoadRequest*>(lua_touserdata(state, 1));
  lua_settop(state, 0);
  int status = luaL_loadbufferx(state, request->source.data(), request->source.size(),
                                request->chunkname->c_str(), "t");
  if (status != LUA_OK) return lua_error(state);
  push_chunk_environment(state);
  lua_setupvalue(state, -2, 1);  // a main chunk's only upvalue is _ENV
  return 1;
}

}  // namespace

const char* to_string(CallFailure failure) {
  switch (failure) {
    case CallFailure::none: return "ok";
    case CallFailure::error: return "error";
    case CallFailure::instructions: return "instruction budget";
    case CallFailure::time: return "time limit";
    case CallFailure::memory: return "memory limit";
  }
  return "?";
}

LuaSandbox::LuaSandbox(SandboxLimits limits) : limits_(limits) {
  memory_.limit = limits.memory_bytes;
  state_ = lua_newstate(&LuaSandbox::allocate, &memory_);
  if (!state_) throw std::runtime_error("reward sandbox: cannot create a Lua state (memory cap too small?)");
  lua_atpanic(state_, panic);
  *static_cast<LuaSandbox**>(lua_getextraspace(state_)) = this;  // copied into every coroutine
  CallStatus status = run(open_sandbox_library, nullptr, 0);
  if (!status.ok()) {
    lua_close(state_);
    throw std::runtime_error("reward sandbox: cannot open the rule library: " + status.message);
  }
  lua_gc(state_, LUA_GCCOLLECT);
}

LuaSandbox::~LuaSandbox() {
  // Safe: rules cannot install finalisers, so closing runs no rule code.
  if (state_) lua_close(state_);
}

LuaSandbox& LuaSandbox::of(lua_State* state) {
  return **static_cast<LuaSandbox**>(lua_getextraspace(state));
}

void* LuaSandbox::allocate(void* user, void* block, std::size_t old_size, std::size_t new_size) {
  auto* memory = static_cast<Memory*>(user);
  const std::size_t old_bytes = block ? old_size : 0;  // without a block, old_size is a type tag
  if (new_size == 0) {
    std::free(block);
    memory->used -= old_bytes;
    return nullptr;
  }
  // Shrinking must never fail (Lua relies on it); growth beyond the cap is refused.
  if (new_size > old_bytes && memory->used - old_bytes + new_size > memory->limit) {
    memory->refused = true;
    return nullptr;
  }
  void* grown = std::realloc(block, new_size);
  if (!grown) return nullptr;
  memory->used = memory->used - old_bytes + new_size;
  return grown;
}

void LuaSandbox::count_hook(lua_State* state, lua_Debug*) {
  LuaSandbox& sandbox = of(state);
  sandbox.spent_ += kHookInterval;
  charge(state, 0);
}

void LuaSandbox::charge(lua_State* state, std::int64_t steps) {
  LuaSandbox& sandbox = of(state);
  // Saturating: C functions may ask to charge spans as wide as the integer range.
  sandbox.spent_ = steps > sandbox.budget_ - sandbox.spent_ ? sandbox.budget_ + 1 : sandbox.spent_ + steps;
  if (sandbox.expired_ == CallFailure::none) {
    if (sandbox.spent_ > sandbox.budget_) {
      sandbox.expired_ = CallFailure::instructions;
    } else if (std::chrono::steady_clock::now() > sandbox.deadline_) {
      sandbox.expired_ = CallFailure::time;
    }
  }
  if (sandbox.expired_ != CallFailure::none) {
    // Raised again at every hook until the call returns, wherever the rule tries to catch it.
    luaL_error(state, "%s exceeded", to_string(sandbox.expired_));
  }
}

bool LuaSandbox::expired(lua_State* state) { return of(state).expired_ != CallFailure::none; }

void LuaSandbox::arm(const SandboxLimits& limits) {
  budget_ = limits.instructions;
  spent_ = 0;
  expired_ = CallFailure::none;
  memory_.refused = false;
  deadline_ = std::chrono::steady_clock::now() +
              std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                  std::chrono::duration<double>(limits.seconds));
  lua_sethook(state_, &LuaSandbox::count_hook, LUA_MASKCOUNT, kHookInterval);
}

CallStatus LuaSandbox::finish(int status) {
  lua_sethook(state_, nullptr, 0, 0);
  CallStatus result;
  if (status == LUA_OK) return result;
  result.message = error_text(state_);
  lua_pop(state_, 1);
  if (expired_ != CallFailure::none) {
    result.failure = expired_;
    result.message = expired_ == CallFailure::instructions
                         ? fmt::format("instruction budget of {} exceeded", budget_)
                         : fmt::format("time limit of {:g} s exceeded", limits_.seconds);
  } else if (status == LUA_ERRMEM || (memory_.refused && status == LUA_ERRERR)) {
    result.failure = CallFailure::memory;
    result.message = fmt::format("memory limit of {} MiB exceeded", memory_.limit >> 20);
  } else {
    result.failure = CallFailure::error;
  }
  // Garbage left by a failed call would otherwise count against the next one's memory.
  lua_gc(state_, LUA_GCCOLLECT);
  return result;
}

CallStatus LuaSandbox::call(int nargs, int nresults) { return call(nargs, nresults, limits_); }

CallStatus LuaSandbox::call(int nargs, int nresults, const SandboxLimits& limits) {
  arm(limits);
  return finish(lua_pcall(state_, nargs, nresults, 0));
}

CallStatus LuaSandbox::run(int (*function)(lua_State*), void* data, int nresults) {
  // lua_pushcclosure with an upvalue would allocate outside protected mode; a light C function and
  // a light userdata do not.
  lua_pushcfunction(state_, function);
  lua_pushlightuserdata(state_, data);
  return call(1, nresults);
}

CallStatus LuaSandbox::load(std::string_view source, const std::string& chunkname) {
  LoadRequest request{source, &chunkname};
  return run(load_entry, &request, 1);
}

}  // namespace grpo::rewards
