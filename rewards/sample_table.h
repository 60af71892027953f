#pragma once
// Converts a Sample (and JSON values) into Lua tables. JSON null becomes nil, arrays become 1-based
// sequences, integers stay integers.
#include <nlohmann/json.hpp>

#include "rewards/sample.h"

struct lua_State;

namespace grpo::rewards {

// Push functions raise Lua errors (memory cap, nesting deeper than 100): call them in protected mode,
// e.g. through LuaSandbox::run.
void push_json(lua_State* state, const nlohmann::json& value);
void push_sample_table(lua_State* state, const Sample& sample);

}  // namespace grpo::rewards
