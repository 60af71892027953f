#include "rl/experiment/check_run.h"

#include <fmt/core.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "policy/tokenizer/tokenizer.h"
#include "rewards/lua_trampoline.h"
#include "rewards/rule_set.h"
#include "rl/experiment/stage_option_specs.h"
#include "rl/experiment/stage_options.h"

namespace grpo {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

// The script's file and line of the stage call being checked ("x.lua:12").
std::string calling_line(lua_State* L) {
  luaL_where(L, 1);
  std::string where = lua_tostring(L, -1);
  lua_pop(L, 1);
  while (!where.empty() && (where.back() == ' ' || where.back() == ':')) where.pop_back();
  return where;
}

std::string joined(const std::vector<std::string>& parts, const char* separator) {
  std::string out;
  for (const std::string& p : parts) out += (out.empty() ? "" : separator) + p;
  return out;
}

// The option naming the model a stage starts from (its tokenizer is the one the prompts are encoded with).
const char* model_option(const StageSpec& spec) {
  for (const char* key : {"model", "student"})
    if (spec.find(key)) return key;
  return nullptr;
}

// The tokenizer of the model the stage starts from: read from disk, or known from the checked stage
// that would write it. Null when neither (a model an earlier stage writes from a tokenizer it was given
// as a table is known; one given as a function result of the script is not).
std::shared_ptr<const Tokenizer> input_tokenizer(lua_State* L, StageOptions& o, const StageSpec& spec) {
  const char* key = model_option(spec);
  if (spec.find("endpoint") && o.has("endpoint")) return nullptr;  // a served model: no tokenizer here
  if (!key || !o.has(key) || o.push(key) != LUA_TSTRING) {
    if (key && o.has(key)) lua_pop(L, 1);
    return nullptr;
  }
  const std::string model = lua_tostring(L, -1);
  lua_pop(L, 1);
  if (const PlannedOutput* planned = planned_output(L, model)) return planned->tokenizer;
  try {
    return std::make_shared<const Tokenizer>(Tokenizer::from_file(model));
  } catch (const std::exception& e) {
    o.fail(fmt::format("option \"{}\": {}", key, e.what()));
  }
}

// Text the tokenizer cannot write back (characters outside a char-level vocabulary become <unk>): a
// stop string that can never be generated, or a prompt the model never sees as written. A warning, since
// the run itself would not fail, only learn nothing.
void warn_unwritable(StageOptions& o, const Tokenizer& tok, const std::string& what, const std::string& text) {
  if (text.empty() || tok.decode(tok.encode(text, /*allow_special=*/false)) == text) return;
  std::string missing;
  for (size_t at = 0; at < text.size();) {
    const unsigned char lead = static_cast<unsigned char>(text[at]);
    const size_t length = lead < 0x80 ? 1 : lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;  // one character
    const std::string character = text.substr(at, length);
    if (tok.decode(tok.encode(character, false)) != character && missing.find(character) == std::string::npos)
      missing += character;
    at += length;
  }
  fmt::print(stderr, "warning: grpo.{}: the tokenizer cannot write {} \"{}\" back{}; it reads as <unk>\n", o.stage(),
             what, text, missing.empty() ? "" : fmt::format(" (\"{}\" is not in its vocabulary)", missing));
}

// Every record's prompt (and completion) rendered as the stage will render it: encoded with the
// model's tokenizer when it is known, else the given template or function applied to each record.
std::string check_prompts(StageOptions& o, const StageSpec& spec, const Tokenizer* tok, const std::vector<json>& records) {
  if (!spec.find("prompt")) return "";
  if (tok) {
    const std::vector<PromptExample> prompts = stage_prompts(o, *tok);
    if (!prompts.empty()) warn_unwritable(o, *tok, "the first prompt", prompts.front().prompt);
    if (spec.find("completion")) {
      const std::vector<std::string> completions = stage_completions(o, prompts);
      if (!completions.empty()) warn_unwritable(o, *tok, "the first completion", completions.front());
    }
    if (spec.find("stop") && o.has("stop") && o.push("stop") == LUA_TSTRING) {
      const std::string stop = lua_tostring(o.lua(), -1);
      lua_pop(o.lua(), 1);
      warn_unwritable(o, *tok, "the stop string", stop);
    } else if (spec.find("stop") && o.has("stop")) {
      lua_pop(o.lua(), 1);
    }
    return "prompts rendered and encoded";
  }
  std::vector<std::string> checked;
  for (const char* key : {"prompt", "completion"}) {
    if (!spec.find(key) || !o.has(key)) continue;
    const int type = o.push(key);
    for (size_t i = 0; i < records.size(); ++i) record_text(o, type, key, records[i], i);
    lua_pop(o.lua(), 1);
    checked.push_back(key);
  }
  return checked.empty() ? "" : fmt::format("{} rendered (the model's tokenizer is not known before it is written)", joined(checked, " and "));
}

// The rules loaded in a sandbox and tried on the first record, as a run would score a completion of it
// (the record's own `completion` field when it has one, else an empty completion).
std::string check_rules(StageOptions& o, const std::vector<json>& records) {
  lua_State* L = o.lua();
  const std::string path = o.string("rules");
  if (planned_output(L, path)) return "rules written by an earlier stage (not checked)";
  std::optional<rewards::RuleSet> rules;
  try {
    rules = rewards::RuleSet::from_file(path);
  } catch (const rewards::RuleSetError& e) {
    o.fail(e.what());
  }
  rewards::RuleScorer scorer(*rules, rewards::SandboxLimits{});
  rewards::Sample sample;
  sample.finish_reason = "stop";
  const char* tried_on = "an empty completion without a record";
  if (!records.empty()) {
    sample.record = records.front();
    const bool own = sample.record.contains("completion") && sample.record["completion"].is_string();
    if (own) sample.completion = sample.record["completion"].get<std::string>();
    tried_on = own ? "record 1 and its completion" : "record 1 with an empty completion";
  }
  const rewards::SampleScore score = scorer.score(sample);
  std::vector<std::string> names, failures;
  for (size_t i = 0; i < score.rules.size(); ++i) {
    names.push_back(rules->rules()[i].name);
    if (score.rules[i].failed())
      failures.push_back(fmt::format("rule \"{}\": {}", rules->rules()[i].name, score.rules[i].message));
  }
  if (!failures.empty())
    o.fail(fmt::format("rules {}: tried on {}, {} failed: {} (a rule should return 0 for a completion it "
                       "rejects, not fail; grpo run --no-check skips this check)",
                       path, tried_on, failures.size() == 1 ? "one" : std::to_string(failures.size()),
                       joined(failures, "; ")));
  return fmt::format("rules {} tried on {}", joined(names, ", "), tried_on);
}

// A stand-in for a stage's metrics: any named field reads as 0, so the script's arithmetic and
// formatting of results go through; numbered entries read as nil, so a stand-in list is empty.
int zero_for_names(lua_State* L) {
  if (lua_type(L, 2) == LUA_TSTRING) {
    lua_pushinteger(L, 0);
  } else {
    lua_pushnil(L);
  }
  return 1;
}

void push_stand_in_table(lua_State* L) {
  lua_newtable(L);
  lua_newtable(L);
  lua_pushcfunction(L, zero_for_names);
  lua_setfield(L, -2, "__index");
  lua_setmetatable(L, -2);
}

}  // namespace

std::string planned_key(const std::string& path) { return fs::absolute(path).lexically_normal().string(); }

const PlannedOutput* planned_output(lua_State* L, const std::string& path) {
  const CheckRun* check = state_of(L).check;
  if (!check || path.empty()) return nullptr;
  for (fs::path p = planned_key(path); !p.empty(); p = p.parent_path()) {
    auto it = check->planned.find(p.string());
    if (it != check->planned.end()) return &it->second;
    if (p == p.parent_path()) break;
  }
  return nullptr;
}

void check_stage(StageOptions& o, std::shared_ptr<const Tokenizer> made) {
  lua_State* L = o.lua();
  CheckRun& check = *state_of(L).check;
  const StageSpec& spec = stage_spec(o.stage());
  std::vector<std::string> notes;
  std::shared_ptr<const Tokenizer> tok = input_tokenizer(L, o, spec);

  std::vector<json> records;
  if (spec.find("data") && o.has("data")) {
    std::string data_path;
    if (o.push("data") == LUA_TSTRING) data_path = lua_tostring(L, -1);
    lua_pop(L, 1);
    const PlannedOutput* planned = planned_output(L, data_path);
    records = stage_records(o, "data");
    if (planned && !planned->records) {
      notes.push_back("data written by an earlier stage (not checked)");
    } else {
      if (records.empty()) o.fail("option \"data\": no records");
      notes.push_back(fmt::format("{} records", records.size()));
      const std::string prompts = check_prompts(o, spec, tok.get(), records);
      if (!prompts.empty()) notes.push_back(prompts);
    }
  }
  if (spec.find("rules") && o.has("rules")) notes.push_back(check_rules(o, records));
  // The endpoint's URL and key were checked with the options (stage_configs.cpp); nothing is sent.
  if (spec.find("endpoint") && o.has("endpoint")) notes.push_back("endpoint " + o.string("endpoint") + " (not contacted)");

  const std::string out = o.written_output();
  if (!out.empty()) check.planned[planned_key(out)].tokenizer = made ? made : tok;
  ++check.stages_checked;
  if (!check.quiet)
    fmt::print(stderr, "[check] grpo.{} ({}): {}\n", o.stage(), calling_line(L),
               notes.empty() ? "options" : "options, " + joined(notes, ", "));
  throw StageChecked{out};
}

int push_checked_results(lua_State* L, const StageChecked& checked) {
  if (checked.planned_output.empty()) {
    push_stand_in_table(L);
    return 1;
  }
  lua_pushstring(L, checked.planned_output.c_str());
  push_stand_in_table(L);
  push_stand_in_table(L);
  return 3;
}

void note_function_failure(lua_State* L) {
  if (CheckRun* check = state_of(L).check) check->function_failed = true;
}

int unknown_grpo_function(lua_State* L) {
  const std::string name = lua_type(L, 2) == LUA_TSTRING ? lua_tostring(L, 2) : luaL_typename(L, 2);
  std::vector<std::string> names;
  lua_pushnil(L);
  while (lua_next(L, 1)) {
    if (lua_type(L, -2) == LUA_TSTRING && lua_type(L, -1) == LUA_TFUNCTION) names.push_back(lua_tostring(L, -2));
    lua_pop(L, 1);
  }
  throw LuaError(fmt::format("grpo.{}: no such function (did you mean grpo.{}?)", name, closest(name, names)));
}

}  // namespace grpo
