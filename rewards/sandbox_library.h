#pragma once
// The library a rule sees: the safe subset of Lua's standard library, frozen so that one rule cannot
// change what another sees, plus `verify` and `require` of the shipped rule library.
struct lua_State;

namespace grpo::rewards {

// Opens the safe library in a fresh state (called once by LuaSandbox). Raises Lua errors: call it
// in protected mode.
int open_sandbox_library(lua_State* state);

// Pushes a fresh global table for one chunk: reads fall through to the frozen safe library, writes
// stay in this table. Raises Lua errors (memory).
void push_chunk_environment(lua_State* state);

}  // namespace grpo::rewards
