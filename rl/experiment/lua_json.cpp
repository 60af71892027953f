#include "rl/experiment/lua_json.h"

#include <fmt/core.h>

#include <cstdint>
#include <string>

#include "rewards/lua_trampoline.h"

namespace grpo {

using nlohmann::json;

json lua_to_json(lua_State* L, int index, int depth) {
  index = lua_absindex(L, index);
  if (depth > 64) throw LuaError("table nested too deeply");
  switch (lua_type(L, index)) {
    case LUA_TNIL: return nullptr;
    case LUA_TBOOLEAN: return static_cast<bool>(lua_toboolean(L, index));
    case LUA_TNUMBER:
      return lua_isinteger(L, index) ? json(static_cast<int64_t>(lua_tointeger(L, index))) : json(lua_tonumber(L, index));
    case LUA_TSTRING: return std::string(lua_tostring(L, index));
    case LUA_TTABLE: {
      const lua_Integer n = static_cast<lua_Integer>(lua_rawlen(L, index));
      int64_t keys = 0;
      lua_pushnil(L);
      while (lua_next(L, index)) {
        ++keys;
        lua_pop(L, 1);
      }
      if (n > 0 && keys == n) {
        json array = json::array();
        for (lua_Integer i = 1; i <= n; ++i) {
          lua_rawgeti(L, index, i);
          array.push_back(lua_to_json(L, -1, depth + 1));
          lua_pop(L, 1);
        }
        return array;
      }
      json object = json::object();
      lua_pushnil(L);
      while (lua_next(L, index)) {
        if (lua_type(L, -2) != LUA_TSTRING) throw LuaError("tables passed to grpo must have string keys or be lists");
        object[lua_tostring(L, -2)] = lua_to_json(L, -1, depth + 1);
        lua_pop(L, 1);
      }
      return object;
    }
    default: throw LuaError(fmt::format("cannot convert a {} to data", luaL_typename(L, index)));
  }
  return nullptr;
}

void push_json(lua_State* L, const json& v) {
  if (v.is_null()) {
    lua_pushnil(L);
  } else if (v.is_boolean()) {
    lua_pushboolean(L, v.get<bool>());
  } else if (v.is_number_integer()) {
    lua_pushinteger(L, v.get<int64_t>());
  } else if (v.is_number()) {
    lua_pushnumber(L, v.get<double>());
  } else if (v.is_string()) {
    const std::string& s = v.get_ref<const std::string&>();
    lua_pushlstring(L, s.data(), s.size());
  } else if (v.is_array()) {
    lua_createtable(L, static_cast<int>(v.size()), 0);
    for (size_t i = 0; i < v.size(); ++i) {
      push_json(L, v[i]);
      lua_rawseti(L, -2, static_cast<lua_Integer>(i + 1));
    }
  } else {
    lua_createtable(L, 0, static_cast<int>(v.size()));
    for (auto it = v.begin(); it != v.end(); ++it) {
      push_json(L, it.value());
      lua_setfield(L, -2, it.key().c_str());
    }
  }
}

namespace {

uint64_t fnv1a(const std::string& bytes) {
  uint64_t h = 14695981039346656037ull;
  for (unsigned char c : bytes) h = (h ^ c) * 1099511628211ull;
  return h;
}

int append_bytes(lua_State*, const void* data, size_t size, void* out) {
  static_cast<std::string*>(out)->append(static_cast<const char*>(data), size);
  return 0;
}

json option_value(lua_State* L, int index, int depth) {
  index = lua_absindex(L, index);
  if (depth > 64) throw LuaError("table nested too deeply");
  switch (lua_type(L, index)) {
    case LUA_TFUNCTION: {
      if (lua_iscfunction(L, index)) return "<C function>";
      std::string bytecode;
      lua_pushvalue(L, index);
      lua_dump(L, append_bytes, &bytecode, /*strip=*/1);
      lua_pop(L, 1);
      return fmt::format("<function {:016x}>", fnv1a(bytecode));
    }
    case LUA_TTABLE: {
      json object = json::object();
      lua_pushnil(L);
      while (lua_next(L, index)) {
        std::string key = lua_type(L, -2) == LUA_TNUMBER ? fmt::format("[{}]", lua_tonumber(L, -2))
                          : lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : luaL_typename(L, -2);
        object[key] = option_value(L, -1, depth + 1);
        lua_pop(L, 1);
      }
      return object;
    }
    case LUA_TUSERDATA:
    case LUA_TLIGHTUSERDATA:
    case LUA_TTHREAD: return fmt::format("<{}>", luaL_typename(L, index));
    default: return lua_to_json(L, index, depth);
  }
}

}  // namespace

json option_fingerprint(lua_State* L, int index) {
  json value = option_value(L, index, 0);
  const std::string text = value.dump();
  constexpr size_t kLongestKeptAsIs = 200;  // longer values (datasets) are kept as size and hash
  if (text.size() <= kLongestKeptAsIs) return value;
  return fmt::format("<{} bytes, hash {:016x}>", text.size(), fnv1a(text));
}

}  // namespace grpo
