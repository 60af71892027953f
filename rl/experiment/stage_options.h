#pragma once
// What every stage of an experiment script shares (rl/experiment/experiment.cpp): the run's state behind the Lua
// state, the validated options table of one stage call, its record in the run directory, and the
// dataset options (records, prompts, completions) that several stages read the same way.
#include <lua.hpp>
#include <nlohmann/json.hpp>

#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "policy/tokenizer/tokenizer.h"
#include "rl/experiment/experiment.h"
#include "rl/prompt_example.h"
#include "rl/experiment/run_directory.h"

namespace grpo {

// The run behind one Lua state (kept in the state's extra space).
struct ExperimentState {
  ExperimentOptions options;
  std::set<std::string> used_overrides;
  int stage_calls = 0;  // numbers the stage records in the run directory (run_directory.h)
};
ExperimentState& state_of(lua_State* L);
void bind_state(lua_State* L, ExperimentState* state);

// Data parallel: rank 0 writes every output; the other ranks compute the same results and wait in
// wait_for_outputs after each write they will read (a saved model, a JSONL file).
bool writes_outputs(lua_State* L);
void wait_for_outputs(lua_State* L);

// A checkpoint directory's model, placed where the run puts models (ExperimentOptions::placement).
CausalLM load_placed_model(lua_State* L, const std::string& directory);

// A stage output path: relative paths live in the run directory.
std::string output_path(lua_State* L, const std::string& relative);

// The options table of one stage call (argument 1). Construction raises a Lua error for a key not in
// `known`, naming the closest known one; the typed getters raise one for a value of the wrong type.
// A --set override "stage.key=value" takes precedence over the table.
class StageOptions {
 public:
  StageOptions(lua_State* L, std::string stage, std::vector<std::string> known);

  bool has(const char* key);
  double number(const char* key, double fallback);
  int64_t integer(const char* key, int64_t fallback);
  bool boolean(const char* key, bool fallback);
  std::string string(const char* key, const std::string& fallback);
  std::string required_string(const char* key);
  // Pushes the raw field and returns its Lua type.
  int push(const char* key) { return lua_getfield(L_, 1, key); }
  [[noreturn]] void type_error(const char* key, const char* expected);

  const std::string& stage() const { return stage_; }
  lua_State* lua() const { return L_; }

  // The stage's options as its record in the run directory keeps them: every value read so far through
  // the typed getters (defaults and --set overrides applied), then the raw value of every other key
  // given in the table (data, prompt functions, config tables) or by --set, as a fingerprint.
  nlohmann::json resolved_options();

 private:
  double read_number(const char* key, double fallback);
  template <typename T>
  T resolved(const char* key, T value) {
    resolved_[key] = value;
    return value;
  }
  int field_type(const char* key);
  const std::string* override_of(const char* key);

  lua_State* L_;
  std::string stage_;
  std::set<std::string> known_;
  nlohmann::json resolved_ = nlohmann::json::object();
};

// The record of this stage call in the run directory (run_directory.h); open it once every option has
// been read. Throws OptionsChangedError when a rerun gives the stage other options.
StageRecord begin_stage(StageOptions& o);
// For a stage an earlier run into this directory finished: pushes the recorded result and returns true,
// unless that result is a path that no longer exists (then the stage runs again).
bool push_recorded_result(lua_State* L, const StageRecord& record);
// The same for a stage whose result is {path_key = path, metrics = {...}}: pushes both.
bool push_recorded_pair(lua_State* L, const StageRecord& record, const char* path_key);

// The records of option `key`: a JSONL path or a Lua list of tables.
std::vector<nlohmann::json> stage_records(StageOptions& o, const char* key);
// "{field}" placeholders replaced by the record's values. Throws std::runtime_error for a missing field.
std::string fill_template(const std::string& text, const nlohmann::json& record);
// The prompts of option "data": option "prompt" as a template or a function of the record, else the
// record's "prompt" field; encoded with `tok` (BOS first when it has one).
std::vector<PromptExample> stage_prompts(StageOptions& o, const Tokenizer& tok);
// Each record's completion for SFT: option "completion" as a template or a function of the record,
// else the record's "completion" field.
std::vector<std::string> stage_completions(StageOptions& o, const std::vector<PromptExample>& prompts);

}  // namespace grpo
