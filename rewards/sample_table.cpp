#include "rewards/sample_table.h"

// C-style (see rewards/lua_trampoline.h): a record nested too deep or one that does not fit the memory
// cap raises a Lua error from up to 100 nested push_value frames, so those frames hold only references
// into the json value and its trivially destructible iterators, never a copy (json::items() proxies
// and keys as std::string would leak on every such record).

#include <lua.hpp>

#include <type_traits>

namespace grpo::rewards {
namespace {

static_assert(std::is_trivially_destructible_v<nlohmann::json::object_t::const_iterator> &&
                  std::is_trivially_destructible_v<nlohmann::json::array_t::const_iterator>,
              "Lua errors jump over the loops of push_value");

constexpr int kMaxDepth = 100;  // deeper records are refused rather than overflowing the C stack

void push_value(lua_State* state, const nlohmann::json& value, int depth) {
  if (depth > kMaxDepth) luaL_error(state, "sample record nested deeper than %d levels", kMaxDepth);
  luaL_checkstack(state, 3, "sample record too deep");
  switch (value.type()) {
    case nlohmann::json::value_t::null:
    case nlohmann::json::value_t::discarded:
      lua_pushnil(state);
      return;
    case nlohmann::json::value_t::boolean:
      lua_pushboolean(state, value.get<bool>());
      return;
    case nlohmann::json::value_t::number_integer:
      lua_pushinteger(state, value.get<std::int64_t>());
      return;
    case nlohmann::json::value_t::number_unsigned: {
      const auto number = value.get<std::uint64_t>();
      if (number <= static_cast<std::uint64_t>(LUA_MAXINTEGER)) {
        lua_pushinteger(state, static_cast<lua_Integer>(number));
      } else {
        lua_pushnumber(state, static_cast<lua_Number>(number));
      }
      return;
    }
    case nlohmann::json::value_t::number_float:
      lua_pushnumber(state, value.get<double>());
      return;
    case nlohmann::json::value_t::string: {
      const auto& text = value.get_ref<const std::string&>();
      lua_pushlstring(state, text.data(), text.size());
      return;
    }
    case nlohmann::json::value_t::binary:
      lua_pushnil(state);
      return;
    case nlohmann::json::value_t::array: {
      lua_createtable(state, static_cast<int>(value.size()), 0);
      lua_Integer index = 1;
      for (const auto& element : value.get_ref<const nlohmann::json::array_t&>()) {
        push_value(state, element, depth + 1);
        lua_rawseti(state, -2, index++);
      }
      return;
    }
    case nlohmann::json::value_t::object: {
      lua_createtable(state, 0, static_cast<int>(value.size()));
      // Plain map iteration: a Lua error may longjmp out of here, so nothing on this frame may own
      // memory (json::items() proxies hold strings).
      for (const auto& [key, element] : value.get_ref<const nlohmann::json::object_t&>()) {
        lua_pushlstring(state, key.data(), key.size());
        push_value(state, element, depth + 1);
        lua_rawset(state, -3);
      }
      return;
    }
  }
  lua_pushnil(state);
}

void set_string(lua_State* state, const char* key, const std::string& text) {
  lua_pushlstring(state, text.data(), text.size());
  lua_setfield(state, -2, key);
}

}  // namespace

void push_json(lua_State* state, const nlohmann::json& value) { push_value(state, value, 0); }

void push_sample_table(lua_State* state, const Sample& sample) {
  if (sample.record.is_object()) {
    push_value(state, sample.record, 0);
  } else {
    lua_createtable(state, 0, 4);
  }
  set_string(state, "prompt", sample.prompt);
  set_string(state, "completion", sample.completion);
  if (sample.completion_tokens) {
    lua_pushinteger(state, *sample.completion_tokens);
    lua_setfield(state, -2, "completion_tokens");
  }
  if (!sample.finish_reason.empty()) set_string(state, "finish_reason", sample.finish_reason);
}

}  // namespace grpo::rewards
