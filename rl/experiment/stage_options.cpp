#include "rl/experiment/stage_options.h"

#include <fmt/core.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <optional>
#include <stdexcept>

#include "policy/checkpoint.h"
#include "rewards/lua_trampoline.h"
#include "rl/experiment/check_run.h"
#include "rl/experiment/conversation.h"
#include "rl/distributed/distributed.h"
#include "rl/experiment/jsonl.h"
#include "rl/experiment/lua_json.h"

namespace grpo {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

}  // namespace

std::string record_text(StageOptions& o, int type, const char* key, const json& record, size_t index) {
  lua_State* L = o.lua();
  if (type == LUA_TFUNCTION) {
    lua_pushvalue(L, -1);
    push_json(L, record);
    try {
      call_protected(L, 1, 1);
    } catch (const LuaError& e) {
      o.fail(fmt::format("the {} function failed on record {}: {}", key, index + 1, e.what()));
    }
    if (lua_type(L, -1) != LUA_TSTRING && lua_type(L, -1) != LUA_TNUMBER) {
      const std::string got = luaL_typename(L, -1);
      lua_pop(L, 1);
      o.fail(fmt::format("the {} function must return a string, got {} for record {}", key, got, index + 1));
    }
    std::string text = lua_tostring(L, -1);
    lua_pop(L, 1);
    return text;
  }
  if (type == LUA_TSTRING) {
    try {
      return fill_template(lua_tostring(L, -1), record);
    } catch (const LuaError& e) {
      o.fail(fmt::format("record {}: {}", index + 1, e.what()));
    }
  }
  if (record.contains(key) && record[key].is_string()) return record[key].get<std::string>();
  o.fail(fmt::format("record {} has no string \"{}\" field (or give a {} template or function)", index + 1, key, key));
}

namespace {

// How a value of the wrong type is shown: numbers and strings by value, anything else by its type.
std::string shown_value(lua_State* L, int index) {
  if (lua_type(L, index) == LUA_TNUMBER) return lua_isinteger(L, index) ? std::to_string(lua_tointeger(L, index))
                                                                        : fmt::format("{}", lua_tonumber(L, index));
  if (lua_type(L, index) == LUA_TSTRING) return fmt::format("\"{}\"", lua_tostring(L, index));
  return luaL_typename(L, index);
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

void check_input_path(const std::string& function, const std::string& what, const std::string& given) {
  std::error_code error;
  if (fs::exists(given, error)) return;
  const fs::path p(given);
  if (p.is_absolute()) throw LuaError(fmt::format("{}: {}: no file or directory \"{}\"", function, what, given));
  throw LuaError(fmt::format("{}: {}: no file or directory \"{}\" (resolved against the working directory to {})",
                             function, what, given, fs::absolute(p).lexically_normal().string()));
}

// ---------------------------------------------------------------------------------------------
// StageOptions
// ---------------------------------------------------------------------------------------------

StageOptions::StageOptions(lua_State* L, std::string stage)
    : L_(L), stage_(std::move(stage)), spec_(&stage_spec(stage_)) {
  if (lua_type(L, 1) != LUA_TTABLE)
    fail(fmt::format("expected a table of options, got {}", luaL_typename(L, 1)));
  lua_pushnil(L);
  while (lua_next(L, 1)) {
    if (lua_type(L, -2) != LUA_TSTRING) {
      lua_pop(L, 2);
      fail("option keys must be names");
    }
    const std::string key = lua_tostring(L, -2);
    const OptionSpec* option = spec_->find(key);
    if (!option) {
      lua_pop(L, 2);
      fail(fmt::format("unknown option \"{}\" (did you mean \"{}\"?)", key, closest(key, spec_->names())));
    }
    check_value(*option);
    lua_pop(L, 1);
  }
  for (const OptionSpec& option : spec_->options) {
    const char* key = option.name.c_str();
    if (option.required() && !has(key)) fail(fmt::format("option \"{}\" is required", option.name));
    // Input paths are checked before the stage does any work (or opens its record). With an endpoint,
    // `model` names the served model, not a directory.
    if (!(option.types & kPath)) continue;
    if (option.name == "model" && spec_->find("endpoint") && has("endpoint")) continue;
    const bool is_path = push(key) == LUA_TSTRING;
    const std::string given = is_path ? lua_tostring(L_, -1) : "";
    lua_pop(L_, 1);
    // A checking run accepts what an earlier checked stage would write there.
    if (is_path && !planned_output(L_, given)) check_input_path("grpo." + stage_, fmt::format("option \"{}\"", key), given);
  }
}

void StageOptions::check_value(const OptionSpec& option) {
  const unsigned t = option.types;
  bool ok = false;
  switch (lua_type(L_, -1)) {
    case LUA_TNUMBER:
      ok = (t & kNumber) || ((t & kInteger) && lua_isinteger(L_, -1)) ||
           ((t & kInteger) && lua_tonumber(L_, -1) == std::floor(lua_tonumber(L_, -1)));
      break;
    case LUA_TBOOLEAN: ok = t & kBoolean; break;
    case LUA_TSTRING:
      ok = (t & (kString | kPath | kTemplate)) ||
           ((t & kEnum) && std::count(option.allowed.begin(), option.allowed.end(), lua_tostring(L_, -1)) > 0);
      break;
    case LUA_TTABLE: ok = t & kTable; break;
    case LUA_TFUNCTION: ok = t & kFunction; break;
    default: break;
  }
  if (ok) return;
  const std::string got = shown_value(L_, -1);
  lua_pop(L_, 2);  // the value and the key of the traversal
  fail(fmt::format("option \"{}\" must be {}, got {}", option.name, describe_types(option), got));
}

bool StageOptions::has(const char* key) {
  if (override_of(key)) return true;
  const int type = lua_getfield(L_, 1, key);
  lua_pop(L_, 1);
  return type != LUA_TNIL;
}

double StageOptions::number(const char* key) {
  const json v = value(key);
  if (!v.is_number()) throw std::logic_error(fmt::format("grpo.{}: option {} has no number default", stage_, key));
  return resolved(key, v.get<double>());
}

int64_t StageOptions::integer(const char* key) {
  const json v = value(key);
  if (!v.is_number()) throw std::logic_error(fmt::format("grpo.{}: option {} has no integer default", stage_, key));
  return resolved(key, v.is_number_integer() ? v.get<int64_t>() : static_cast<int64_t>(v.get<double>()));
}

int64_t StageOptions::integer(const char* key, int64_t computed_default) {
  return has(key) ? integer(key) : resolved(key, computed_default);
}

bool StageOptions::boolean(const char* key) {
  const json v = value(key);
  if (!v.is_boolean()) throw std::logic_error(fmt::format("grpo.{}: option {} has no boolean default", stage_, key));
  return resolved(key, v.get<bool>());
}

std::string StageOptions::string(const char* key) {
  const json v = value(key);
  if (!v.is_string()) throw std::logic_error(fmt::format("grpo.{}: option {} has no string default", stage_, key));
  return resolved(key, v.get<std::string>());
}

std::string StageOptions::output(const char* key) { return written_output_ = output_path(L_, string(key)); }

int StageOptions::push(const char* key) {
  if (const json* o = override_of(key)) {
    push_json(L_, *o);
    return lua_type(L_, -1);
  }
  return lua_getfield(L_, 1, key);
}

void StageOptions::fail(const std::string& message) const { throw LuaError(fmt::format("grpo.{}: {}", stage_, message)); }

json StageOptions::resolved_options() {
  json options = resolved_;
  lua_pushnil(L_);
  while (lua_next(L_, 1)) {
    std::string key = lua_tostring(L_, -2);
    if (!options.contains(key)) options[key] = option_fingerprint(L_, -1);
    lua_pop(L_, 1);
  }
  const std::string prefix = stage_ + ".";
  for (const auto& [key, value] : state_of(L_).overrides)
    if (key.rfind(prefix, 0) == 0 && !options.contains(key.substr(prefix.size()))) options[key.substr(prefix.size())] = value;
  // What the input files hold, not only their names: an edited rules file, data file or model config
  // is a changed option (run_directory.h: content_fingerprint).
  for (const OptionSpec& option : spec_->options) {
    if (!(option.types & kPath)) continue;
    const json given = value(option.name.c_str());
    if (given.is_string() && !given.get<std::string>().empty() && fs::exists(given.get<std::string>()))
      options["content of " + option.name] = content_fingerprint(given.get<std::string>());
  }
  return options;
}

const OptionSpec& StageOptions::spec(const char* key) const {
  const OptionSpec* option = spec_->find(key);
  if (!option) throw std::logic_error(fmt::format("grpo.{}: option {} is not declared", stage_, key));
  return *option;
}

json StageOptions::value(const char* key) {
  const OptionSpec& option = spec(key);
  if (const json* o = override_of(key)) return *o;
  json v;
  switch (lua_getfield(L_, 1, key)) {
    case LUA_TNIL: v = option.default_value; break;
    case LUA_TBOOLEAN: v = static_cast<bool>(lua_toboolean(L_, -1)); break;
    case LUA_TNUMBER:
      v = lua_isinteger(L_, -1) ? json(static_cast<int64_t>(lua_tointeger(L_, -1))) : json(lua_tonumber(L_, -1));
      break;
    case LUA_TSTRING: v = std::string(lua_tostring(L_, -1)); break;
    default: break;  // tables and functions are read with push()
  }
  lua_pop(L_, 1);
  return v;
}

const json* StageOptions::override_of(const char* key) {
  ExperimentState& s = state_of(L_);
  auto it = s.overrides.find(stage_ + "." + key);
  if (it == s.overrides.end()) return nullptr;
  s.used_overrides.insert(it->first);
  return &it->second;
}

// ---------------------------------------------------------------------------------------------
// Stage records
// ---------------------------------------------------------------------------------------------

StageRecord begin_stage(StageOptions& o, const Tokenizer* made) {
  ExperimentState& s = state_of(o.lua());
  if (s.check) check_stage(o, made ? std::make_shared<const Tokenizer>(*made) : nullptr);
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
    const std::string path = lua_tostring(L, -1);  // checked to exist by StageOptions
    lua_pop(L, 1);
    if (const PlannedOutput* planned = planned_output(L, path)) return planned->records.value_or(std::vector<json>{});
    return read_jsonl(path);
  }
  if (type != LUA_TTABLE) {
    lua_pop(L, 1);
    o.fail(fmt::format("option \"{}\" (a JSONL path or a list of records) is required", key));
  }
  json list = lua_to_json(L, -1);
  lua_pop(L, 1);
  if (!list.is_array() && !list.empty()) o.fail(fmt::format("option \"{}\" must be a list of records or a JSONL path", key));
  for (json& r : list) records.push_back(std::move(r));
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
    if (!record.contains(field)) throw LuaError(fmt::format("template \"{}\": record has no field \"{}\"", text, field));
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
  std::optional<ConversationRenderer> chat;  // the stage's template, loaded at the first conversational record
  for (size_t i = 0; i < records.size(); ++i) {
    PromptExample p;
    if (type == LUA_TNIL && is_conversational(records[i])) {  // rl/experiment/conversation.h
      if (!chat) chat.emplace(stage_conversation_renderer(o, tok, i + 1));
      try {
        RenderedConversation r = chat->prompt(records[i], i + 1);
        p.prompt = std::move(r.text);
        p.prompt_ids = std::move(r.ids);
      } catch (const std::exception& e) {
        o.fail(e.what());
      }
      p.record = std::move(records[i]);
      out.push_back(std::move(p));
      continue;
    }
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
  for (size_t i = 0; i < prompts.size(); ++i)  // a conversation's completions are its assistant turns: ""
    out.push_back(type == LUA_TNIL && is_conversational(prompts[i].record) ? std::string()
                                                                           : record_text(o, type, "completion", prompts[i].record, i));
  lua_pop(o.lua(), 1);
  return out;
}

}  // namespace grpo
