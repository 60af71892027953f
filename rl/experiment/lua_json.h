#pragma once
// Lua values <-> JSON, for the experiment host (rl/experiment/experiment.cpp): stage options and datasets arrive
// as Lua tables, stage results leave as Lua values, and stage records keep options as JSON.
#include <lua.hpp>
#include <nlohmann/json.hpp>

namespace grpo {

// A Lua value as JSON: a table with keys 1..n only is an array, one with string keys an object.
// Throws LuaError (rewards/lua_trampoline.h) for functions, userdata, mixed keys or nesting deeper than 64.
nlohmann::json lua_to_json(lua_State* L, int index, int depth = 0);

// Pushes `value` as a Lua value (arrays become lists, objects tables with string keys).
void push_json(lua_State* L, const nlohmann::json& value);

// What a stage record keeps of an option's raw Lua value, to tell on a rerun whether it changed:
// plain data as JSON, a Lua function by a hash of its bytecode (without debug information, so moving
// it to another line is no change), and anything long (a dataset) by its size and hash.
nlohmann::json option_fingerprint(lua_State* L, int index);

}  // namespace grpo
