#pragma once
// string.find, string.match, string.gmatch and string.gsub with Lua 5.4 pattern semantics, whose
// matching steps are charged to the sandbox's instruction budget. Lua's own matcher backtracks in C
// where the count hook never fires: string.find(("a"):rep(3000), ".-.-.-.-b") runs for minutes.
// This matcher is a separate implementation of the same pattern language that stops when the
// budget (or the wall-clock limit) is spent.
struct lua_State;

namespace grpo::rewards {

// Sets find, match, gmatch and gsub in the table at the top of the stack.
void install_bounded_patterns(lua_State* state);

}  // namespace grpo::rewards
