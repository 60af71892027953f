#include "rewards/rule_set.h"

// read_rule_entries runs inside the sandbox (rule entries may carry metamethods) and fills C++ vectors,
// so it is C++-style behind lua_trampoline (rewards/lua_trampoline.h): it throws LuaError, and a
// std::bad_alloc from a vector becomes a Lua error instead of an exception thrown through Lua's C
// frames. The sample table is pushed by a C-style function (push_sample_entry) that owns nothing.

#include <fmt/core.h>
#include <lua.hpp>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <memory>
#include <sstream>

#include "rewards/lua_trampoline.h"
#include "rewards/sample_table.h"

namespace grpo::rewards {
namespace {

constexpr int kMaxParts = 64;  // named values one rule may report

// What reading the rules chunk's result produces.
struct RuleEntries {
  std::string default_name;
  std::vector<RuleSpec> specs;
  std::vector<int> refs;
};

std::optional<double> optional_number(lua_State* state, int table, const char* key, int entry) {
  const int type = lua_getfield(state, table, key);
  if (type == LUA_TNIL) {
    lua_pop(state, 1);
    return std::nullopt;
  }
  if (type != LUA_TNUMBER) {
    throw LuaError(fmt::format("rule entry {}: '{}' must be a number, got {}", entry, key, lua_typename(state, type)));
  }
  const double number = lua_tonumber(state, -1);
  lua_pop(state, 1);
  if (!std::isfinite(number)) throw LuaError(fmt::format("rule entry {}: '{}' must be finite", entry, key));
  return number;
}

// Stack: [entries*, result of the rules chunk]. Keeps the rule functions in the registry. Called from
// Lua through lua_trampoline: the Lua calls here that may raise (lua_getfield runs the entries'
// metamethods, luaL_ref allocates) happen while only trivially destructible locals are alive; the
// vectors filled live in the caller's frame, outside the protected call.
int read_rule_entries(lua_State* state) {
  auto* entries = static_cast<RuleEntries*>(lua_touserdata(state, 1));
  if (lua_type(state, 2) == LUA_TFUNCTION) {
    lua_pushvalue(state, 2);
    const int ref = luaL_ref(state, LUA_REGISTRYINDEX);
    entries->refs.push_back(ref);
    entries->specs.push_back(RuleSpec{entries->default_name, 1.0, std::nullopt, std::nullopt});
    return 0;
  }
  if (lua_type(state, 2) != LUA_TTABLE) {
    throw LuaError(fmt::format("the rules file must return a function or a list of rule entries, got {}",
                               luaL_typename(state, 2)));
  }
  const lua_Integer count = static_cast<lua_Integer>(lua_rawlen(state, 2));
  if (count == 0) throw LuaError("the rules file returned an empty list of rules");
  for (lua_Integer i = 1; i <= count; ++i) {
    const int entry = static_cast<int>(i);
    if (lua_rawgeti(state, 2, i) != LUA_TTABLE) {
      throw LuaError(fmt::format("rule entry {} must be a table {{name=..., rule=..., weight=...}}", entry));
    }
    const int table = lua_gettop(state);
    if (lua_getfield(state, table, "name") != LUA_TSTRING || lua_rawlen(state, -1) == 0) {
      throw LuaError(fmt::format("rule entry {} needs a non-empty string 'name'", entry));
    }
    const int name = lua_gettop(state);
    for (lua_Integer j = 1; j < i; ++j) {  // names must be unique: they key metrics
      lua_rawgeti(state, 2, j);
      lua_getfield(state, -1, "name");
      if (lua_rawequal(state, -1, name)) {
        throw LuaError(fmt::format("rule entry {}: duplicate rule name '{}'", entry, lua_tostring(state, name)));
      }
      lua_pop(state, 2);
    }
    if (lua_getfield(state, table, "rule") != LUA_TFUNCTION) {
      throw LuaError(fmt::format("rule entry {} ('{}'): 'rule' must be a function of a sample", entry,
                                 lua_tostring(state, name)));
    }
    const std::optional<double> weight = optional_number(state, table, "weight", entry);
    const std::optional<double> instructions = optional_number(state, table, "instructions", entry);
    const std::optional<double> seconds = optional_number(state, table, "seconds", entry);
    if ((instructions && *instructions < 1) || (seconds && *seconds <= 0)) {
      throw LuaError(fmt::format("rule entry {}: limits must be positive", entry));
    }
    lua_pushvalue(state, name + 1);  // the rule function
    const int ref = luaL_ref(state, LUA_REGISTRYINDEX);
    std::size_t name_size = 0;
    const char* name_text = lua_tolstring(state, name, &name_size);
    // C++ only from here to the end of the iteration.
    entries->refs.push_back(ref);
    RuleSpec& spec = entries->specs.emplace_back();
    spec.name.assign(name_text, name_size);
    spec.weight = weight.value_or(1.0);
    if (instructions) spec.instructions = static_cast<std::int64_t>(*instructions);
    spec.seconds = seconds;
    lua_settop(state, 2);
  }
  return 0;
}

struct LoadedRules {
  std::unique_ptr<LuaSandbox> sandbox;
  RuleEntries entries;
};

LoadedRules load_rules(const RuleSet& rules, const std::string& default_name, SandboxLimits limits) {
  LoadedRules loaded;
  loaded.sandbox = std::make_unique<LuaSandbox>(limits);
  LuaSandbox& sandbox = *loaded.sandbox;
  CallStatus status = sandbox.load(rules.source(), "@" + rules.origin());
  if (status.ok()) status = sandbox.call(0, 1);  // run the chunk: it returns the rules
  if (!status.ok()) throw RuleSetError(fmt::format("rules {}: {}", rules.origin(), status.message));
  loaded.entries.default_name = default_name;
  lua_State* state = sandbox.state();
  lua_pushcfunction(state, lua_trampoline<read_rule_entries>);
  lua_insert(state, -2);
  lua_pushlightuserdata(state, &loaded.entries);
  lua_insert(state, -2);
  status = sandbox.call(2, 0);
  if (!status.ok()) throw RuleSetError(fmt::format("rules {}: {}", rules.origin(), status.message));
  return loaded;
}

std::string file_stem(const std::string& origin) {
  std::string name = origin.substr(origin.find_last_of('/') + 1);
  const auto dot = name.rfind('.');
  if (dot != std::string::npos && dot > 0) name.resize(dot);
  return name.empty() ? std::string("rule") : name;
}

// Reads the rule's result at the top of the stack into `score` and pops it.
void read_result(lua_State* state, RuleScore& score) {
  const int type = lua_type(state, -1);
  if (type == LUA_TNUMBER) {
    const double value = lua_tonumber(state, -1);
    lua_pop(state, 1);
    if (!std::isfinite(value)) {
      score.failure = CallFailure::error;
      score.message = fmt::format("rule returned {}; a reward must be a finite number", value);
      return;
    }
    score.value = value;
    return;
  }
  if (type != LUA_TTABLE) {
    score.failure = CallFailure::error;
    score.message = fmt::format("rule returned a {} value; a rule must return a number or a table of "
                                "named numbers", lua_typename(state, type));
    lua_pop(state, 1);
    return;
  }
  // Raw traversal: no metamethod (rule code) runs here, outside the sandbox's limits.
  double sum = 0.0;
  lua_pushnil(state);
  while (lua_next(state, -2) != 0) {
    const bool named_number = lua_type(state, -2) == LUA_TSTRING && lua_type(state, -1) == LUA_TNUMBER;
    const double value = named_number ? lua_tonumber(state, -1) : 0.0;
    if (!named_number || !std::isfinite(value) ||
        static_cast<int>(score.parts.size()) >= kMaxParts) {
      score.failure = CallFailure::error;
      score.message = !named_number ? "rule returned a table that is not all string keys to numbers"
                      : !std::isfinite(value)
                          ? fmt::format("rule returned {} for '{}'", value, lua_tostring(state, -2))
                          : fmt::format("rule returned more than {} named values", kMaxParts);
      score.parts.clear();
      lua_pop(state, 3);
      return;
    }
    score.parts.emplace_back(lua_tostring(state, -2), value);
    sum += value;
    lua_pop(state, 1);
  }
  lua_pop(state, 1);
  std::sort(score.parts.begin(), score.parts.end());
  score.value = sum;
}

int push_sample_entry(lua_State* state) {
  push_sample_table(state, *static_cast<const Sample*>(lua_touserdata(state, 1)));
  return 1;
}

}  // namespace

RuleSet RuleSet::from_file(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  if (!file) throw RuleSetError(fmt::format("rules {}: cannot open the file", path));
  std::ostringstream text;
  text << file.rdbuf();
  return from_source(text.str(), path);
}

RuleSet RuleSet::from_source(std::string source, std::string origin) {
  RuleSet rules;
  rules.source_ = std::move(source);
  rules.origin_ = std::move(origin);
  // Loading once here validates the file and learns the rule names before any worker starts.
  LoadedRules loaded = load_rules(rules, file_stem(rules.origin_), SandboxLimits{});
  rules.rules_ = std::move(loaded.entries.specs);
  return rules;
}

RuleScorer::RuleScorer(const RuleSet& rules, SandboxLimits limits) : rules_(&rules), limits_(limits) {
  rebuild();
}

RuleScorer::~RuleScorer() = default;
RuleScorer::RuleScorer(RuleScorer&&) noexcept = default;

void RuleScorer::rebuild() {
  LoadedRules loaded = load_rules(*rules_, file_stem(rules_->origin()), limits_);
  if (loaded.entries.specs.size() != rules_->rules().size()) {
    throw RuleSetError(fmt::format("rules {}: loading again gave {} rules instead of {}", rules_->origin(),
                                   loaded.entries.specs.size(), rules_->rules().size()));
  }
  sandbox_ = std::move(loaded.sandbox);
  rule_refs_ = std::move(loaded.entries.refs);
}

SampleScore RuleScorer::score(const Sample& sample) {
  const std::vector<RuleSpec>& specs = rules_->rules();
  SampleScore result;
  result.rules.resize(specs.size());
  bool sample_on_stack = false;
  for (std::size_t i = 0; i < specs.size(); ++i) {
    RuleScore& score = result.rules[i];
    lua_State* state = sandbox_->state();
    if (!sample_on_stack) {
      CallStatus status = sandbox_->run(push_sample_entry, const_cast<Sample*>(&sample), 1);
      if (!status.ok()) {  // the record alone does not fit the memory cap: every rule fails
        for (std::size_t j = i; j < specs.size(); ++j) {
          result.rules[j].failure = status.failure;
          result.rules[j].message = "cannot build the sample table: " + status.message;
        }
        break;
      }
      sample_on_stack = true;
    }
    SandboxLimits limits = limits_;
    if (specs[i].instructions) limits.instructions = *specs[i].instructions;
    if (specs[i].seconds) limits.seconds = *specs[i].seconds;
    lua_rawgeti(state, LUA_REGISTRYINDEX, rule_refs_[i]);
    lua_pushvalue(state, -2);
    CallStatus status = sandbox_->call(1, 1, limits);
    if (status.ok()) {
      read_result(state, score);
    } else {
      score.failure = status.failure;
      score.message = std::move(status.message);
    }
    if (status.hit_limit()) {
      // The rule stopped anywhere (mid-update of its own state): start the next rule on a fresh one.
      rebuild();
      ++resets_;
      sample_on_stack = false;
    }
    if (score.failed()) score.value = 0.0;
    result.total += specs[i].weight * score.value;
  }
  if (sample_on_stack) lua_pop(sandbox_->state(), 1);
  return result;
}

}  // namespace grpo::rewards
