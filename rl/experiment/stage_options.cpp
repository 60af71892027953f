#include "rl/experiment/stage_options.h"

#include <fmt/core.h>

#include <algorithm>
#include <filesystem>
#include <stdexcept>

#include "policy/checkpoint.h"
#include "rl/distributed/distributed.h"
#include "rl/experiment/jsonl.h"
#include "rl/experiment/lua_json.h"

namespace grpo {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] != b[j - 1])});
      diagonal = above;
    }
  }
  return row[b.size()];
}

// The text a record gives for option `key` (pushed at the top of the stack, of Lua type `type`): the
// option as a template or a function of the record, else the record's own string field `key`.
std::string record_text(StageOptions& o, int type, const char* key, const json& record, size_t index) {
  lua_State* L = o.lua();
  if (type == LUA_TFUNCTION) {
    lua_pushvalue(L, -1);
    push_json(L, record);
    lua_call(L, 1, 1);
    if (!lua_isstring(L, -1)) luaL_error(L, "grpo.%s: the %s function must return a string", o.stage().c_str(), key);
    std::string text = lua_tostring(L, -1);
    lua_pop(L, 1);
    return text;
  }
  if (type == LUA_TSTRING) return fill_template(lua_tostring(L, -1), record);
  if (record.contains(key) && record[key].is_string()) return record[key].get<std::string>();
  luaL_error(L, "grpo.%s: record %d has no string \"%s\" field (or give a %s template or function)", o.stage().c_str(),
             static_cast<int>(index + 1), key, key);
  return {};
}

}  // namespace

ExperimentState& state_of(lua_State* L) { return **static_cast<ExperimentState**>(lua_getextraspace(L)); }
void bind_state(lua_State* L, ExperimentState* state) { *static_cast<ExperimentState**>(lua_getextraspace(L)) = state; }

bool writes_outputs(lua_State* L) {
  Distributed* d = state_of(L).options.distributed;
  return !d || d->is_main();
}

void wait_for_outputs(lua_State* L) {
  if (Distributed* d = state_of(L).options.distributed) d->barrier();
}

CausalLM load_placed_model(lua_State* L, const std::string& directory) {
  CausalLM model = load_checkpoint(directory);
  place_model(model, state_of(L).options.placement);
  return model;
}

std::string output_path(lua_State* L, const std::string& relative) {
  fs::path p(relative);
  return p.is_absolute() ? p.string() : (fs::path(state_of(L).options.run_directory) / p).string();
}

// ---------------------------------------------------------------------------------------------
// StageOptions
// ---------------------------------------------------------------------------------------------

StageOptions::StageOptions(lua_State* L, std::string stage, std::vector<std::string> known) : L_(L), stage_(std::move(stage)) {
  luaL_checktype(L, 1, LUA_TTABLE);
  known_ = std::set<std::string>(known.begin(), known.end());
  lua_pushnil(L);
  while (lua_next(L, 1)) {
    if (lua_type(L, -2) != LUA_TSTRING) luaL_error(L, "grpo.%s: option keys must be names", stage_.c_str());
    std::string key = lua_tostring(L, -2);
    if (!known_.count(key)) {
      std::string best;
      size_t best_distance = 1000;
      for (const std::string& k : known) {
        size_t d = edit_distance(key, k);
        if (d < best_distance) best = k, best_distance = d;
      }
      luaL_error(L, "grpo.%s: unknown option \"%s\" (did you mean \"%s\"?)", stage_.c_str(), key.c_str(), best.c_str());
    }
    lua_pop(L, 1);
  }
}

bool StageOptions::has(const char* key) { return override_of(key) || field_type(key) != LUA_TNIL; }

double StageOptions::number(const char* key, double fallback) { return resolved(key, read_number(key, fallback)); }

int64_t StageOptions::integer(const char* key, int64_t fallback) {
  double v = read_number(key, static_cast<double>(fallback));
  if (v != static_cast<double>(static_cast<int64_t>(v))) type_error(key, "an integer");
  return resolved(key, static_cast<int64_t>(v));
}

bool StageOptions::boolean(const char* key, bool fallback) {
  if (const std::string* o = override_of(key)) return resolved(key, *o == "true" || *o == "1");
  int type = field_type(key);
  if (type == LUA_TNIL) return resolved(key, fallback);
  if (type != LUA_TBOOLEAN) type_error(key, "true or false");
  lua_getfield(L_, 1, key);
  bool v = lua_toboolean(L_, -1);
  lua_pop(L_, 1);
  return resolved(key, v);
}

std::string StageOptions::string(const char* key, const std::string& fallback) {
  if (const std::string* o = override_of(key)) return resolved(key, *o);
  int type = field_type(key);
  if (type == LUA_TNIL) return resolved(key, fallback);
  if (type != LUA_TSTRING) type_error(key, "a string");
  lua_getfield(L_, 1, key);
  std::string v = lua_tostring(L_, -1);
  lua_pop(L_, 1);
  return resolved(key, v);
}

std::string StageOptions::required_string(const char* key) {
  if (!has(key)) luaL_error(L_, "grpo.%s: option \"%s\" is required", stage_.c_str(), key);
  return string(key, "");
}

void StageOptions::type_error(const char* key, const char* expected) {
  luaL_error(L_, "grpo.%s: option \"%s\" must be %s, got %s", stage_.c_str(), key, expected, lua_typename(L_, field_type(key)));
  throw std::logic_error("unreachable");
}

json StageOptions::resolved_options() {
  json options = resolved_;
  lua_pushnil(L_);
  while (lua_next(L_, 1)) {
    std::string key = lua_tostring(L_, -2);
    if (!options.contains(key)) options[key] = option_fingerprint(L_, -1);
    lua_pop(L_, 1);
  }
  const std::string prefix = stage_ + ".";
  for (const auto& [key, value] : state_of(L_).options.overrides)
    if (key.rfind(prefix, 0) == 0 && !options.contains(key.substr(prefix.size()))) options[key.substr(prefix.size())] = value;
  return options;
}

double StageOptions::read_number(const char* key, double fallback) {
  if (const std::string* o = override_of(key)) return std::stod(*o);
  int type = field_type(key);
  if (type == LUA_TNIL) return fallback;
  if (type != LUA_TNUMBER) type_error(key, "a number");
  lua_getfield(L_, 1, key);
  double v = lua_tonumber(L_, -1);
  lua_pop(L_, 1);
  return v;
}

int StageOptions::field_type(const char* key) {
  int type = lua_getfield(L_, 1, key);
  lua_pop(L_, 1);
  return type;
}

const std::string* StageOptions::override_of(const char* key) {
  ExperimentState& s = state_of(L_);
  auto it = s.options.overrides.find(stage_ + "." + key);
  if (it == s.options.overrides.end()) return nullptr;
  s.used_overrides.insert(it->first);
  return &it->second;
}

// ---------------------------------------------------------------------------------------------
// Stage records
// ---------------------------------------------------------------------------------------------

StageRecord begin_stage(StageOptions& o) {
  ExperimentState& s = state_of(o.lua());
  // The other ranks keep their own stage records (the same history) under .ranks/, so that every rank
  // takes the same resume decisions while only rank 0 touches the run directory's own records.
  const std::string records = writes_outputs(o.lua()) ? s.options.run_directory
                                                      : fmt::format("{}/.ranks/{}", s.options.run_directory,
                                                                    s.options.distributed->rank());
  return StageRecord::open(records, s.stage_calls++, o.stage(), o.resolved_options());
}

bool push_recorded_result(lua_State* L, const StageRecord& record) {
  if (!record.complete()) return false;
  const json& result = record.result();
  if (result.is_string() && !fs::exists(result.get<std::string>())) return false;
  fmt::print(stderr, "[{}] finished in an earlier run ({})\n", record.stage(), record.path());
  push_json(L, result);
  return true;
}

bool push_recorded_pair(lua_State* L, const StageRecord& record, const char* path_key) {
  if (!record.complete() || !record.result().is_object()) return false;
  const json& result = record.result();
  if (!result.contains(path_key) || !fs::exists(result[path_key].get<std::string>())) return false;
  fmt::print(stderr, "[{}] finished in an earlier run ({})\n", record.stage(), record.path());
  push_json(L, result[path_key]);
  push_json(L, result.value("metrics", json::object()));
  return true;
}

// ---------------------------------------------------------------------------------------------
// Datasets
// ---------------------------------------------------------------------------------------------

std::vector<json> stage_records(StageOptions& o, const char* key) {
  lua_State* L = o.lua();
  int type = o.push(key);
  std::vector<json> records;
  if (type == LUA_TSTRING) {
    records = read_jsonl(lua_tostring(L, -1));
  } else if (type == LUA_TTABLE) {
    json list = lua_to_json(L, -1);
    if (!list.is_array()) luaL_error(L, "grpo.%s: option \"%s\" must be a list of records or a JSONL path", o.stage().c_str(), key);
    for (json& r : list) records.push_back(std::move(r));
  } else {
    luaL_error(L, "grpo.%s: option \"%s\" (a JSONL path or a list of records) is required", o.stage().c_str(), key);
  }
  lua_pop(L, 1);
  return records;
}

std::string fill_template(const std::string& text, const json& record) {
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    size_t close = text[i] == '{' ? text.find('}', i) : std::string::npos;
    if (close == std::string::npos) {
      out += text[i];
      continue;
    }
    std::string field = text.substr(i + 1, close - i - 1);
    if (!record.contains(field)) throw std::runtime_error(fmt::format("prompt template: record has no field \"{}\"", field));
    const json& v = record[field];
    out += v.is_string() ? v.get<std::string>() : v.dump();
    i = close;
  }
  return out;
}

std::vector<PromptExample> stage_prompts(StageOptions& o, const Tokenizer& tok) {
  std::vector<json> records = stage_records(o, "data");
  std::vector<PromptExample> out;
  const int type = o.push("prompt");
  for (size_t i = 0; i < records.size(); ++i) {
    PromptExample p;
    p.prompt = record_text(o, type, "prompt", records[i], i);
    p.prompt_ids = tok.encode(p.prompt, /*allow_special=*/false);
    if (tok.bos_id() >= 0) p.prompt_ids.insert(p.prompt_ids.begin(), tok.bos_id());
    p.record = std::move(records[i]);
    out.push_back(std::move(p));
  }
  lua_pop(o.lua(), 1);
  return out;
}

std::vector<std::string> stage_completions(StageOptions& o, const std::vector<PromptExample>& prompts) {
  const int type = o.push("completion");
  std::vector<std::string> out;
  for (size_t i = 0; i < prompts.size(); ++i) out.push_back(record_text(o, type, "completion", prompts[i].record, i));
  lua_pop(o.lua(), 1);
  return out;
}

}  // namespace grpo
