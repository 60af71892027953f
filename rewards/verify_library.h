#pragma once
// The `verify` table rules call: answer extraction, math equivalence, safe arithmetic, script ratio
// and sandboxed program runs, all implemented in C++ (docs/rewards.md lists the API).
struct lua_State;

namespace grpo::rewards {

// Pushes a new table holding the verify functions. Raises Lua errors (memory).
void open_verify_library(lua_State* state);

}  // namespace grpo::rewards
