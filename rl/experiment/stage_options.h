#pragma once
// What every stage of an experiment script shares (rl/experiment/experiment.cpp): the run's state behind the Lua
// state, the validated options table of one stage call, its record in the run directory, and the
// dataset options (records, prompts, completions) that several stages read the same way.
#include <lua.hpp>
#include <nlohmann/json.hpp>

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "policy/tokenizer/tokenizer.h"
#include "rl/experiment/experiment.h"
#include "rl/prompt_example.h"
#include "rl/experiment/run_directory.h"
#include "rl/experiment/stage_option_specs.h"

namespace grpo {

struct CheckRun;  // rl/experiment/check_run.h

// The run behind one Lua state (kept in the state's extra space).
struct ExperimentState {
  ExperimentOptions options;
  // --set values, checked and converted by parse_overrides (stage_option_specs.h) before the script ran.
  std::map<std::string, nlohmann::json> overrides;
  std::set<std::string> used_overrides;
  int stage_calls = 0;  // numbers the stage records in the run directory (run_directory.h)
  CheckRun* check = nullptr;  // a checking run: stages are checked, not run (check_run.h)
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
// An input path (a model, a data file, rules): relative paths resolve against the working directory.
// Throws LuaError "<function>: <what>: no file or directory "<given>" (resolved against the working
// directory to <absolute>)" when nothing is there.
void check_input_path(const std::string& function, const std::string& what, const std::string& given);

// The options table of one stage call (argument 1), read through the stage's declarations
// (stage_option_specs.h). Nothing here raises a Lua error: every error is a LuaError (rewards/
// lua_trampoline.h), which the stage's trampoline raises in the script with its file and line.
class StageOptions {
 public:
  // Checks the table: no undeclared key (the error names the closest declared one), every value of a
  // declared type (an enum's among its allowed values), every required option given, and every input
  // path given as a string (the table's or --set's) there (check_input_path).
  StageOptions(lua_State* L, std::string stage);

  // True when the --set overrides or the table give `key`.
  bool has(const char* key);
  // The --set value, else the table's, else the declared default; each kept for the stage record.
  double number(const char* key);
  int64_t integer(const char* key);
  int64_t integer(const char* key, int64_t computed_default);  // for a default that depends on other options
  bool boolean(const char* key);
  std::string string(const char* key);  // string, enum and path options
  // The `out` option as output_path resolves it, in the run directory.
  std::string output(const char* key);
  // The last output() read: what the stage writes (a checking run plans it; check_run.h).
  const std::string& written_output() const { return written_output_; }
  // Pushes the value (the --set value when there is one) and returns its Lua type.
  int push(const char* key);
  // Throws LuaError "grpo.<stage>: <message>".
  [[noreturn]] void fail(const std::string& message) const;

  const std::string& stage() const { return stage_; }
  lua_State* lua() const { return L_; }

  // The stage's options as its record in the run directory keeps them: every value read so far through
  // the typed getters (defaults and --set overrides applied), then the raw value of every other key
  // given in the table (data, prompt functions, config tables) or by --set, as a fingerprint.
  nlohmann::json resolved_options();

 private:
  const OptionSpec& spec(const char* key) const;
  void check_value(const OptionSpec& spec);  // the value at the top of the stack
  // The scalar value (number, boolean, string) of `key`: --set, table, declared default; null if none.
  nlohmann::json value(const char* key);
  template <typename T>
  T resolved(const char* key, T value) {
    resolved_[key] = value;
    return value;
  }
  const nlohmann::json* override_of(const char* key);

  lua_State* L_;
  std::string stage_;
  const StageSpec* spec_;
  nlohmann::json resolved_ = nlohmann::json::object();
  std::string written_output_;
};

// The record of this stage call in the run directory (run_directory.h); open it once every option has
// been read. Throws OptionsChangedError when a rerun gives the stage other options. In a checking run
// it checks the stage's data and rules instead and throws StageChecked (check_run.h); `made` is the
// tokenizer of the model a stage makes from nothing (grpo.init), for the later stages' checks.
StageRecord begin_stage(StageOptions& o, const Tokenizer* made = nullptr);
// For a stage an earlier run into this directory finished: pushes the recorded result and returns true,
// unless that result is a path that no longer exists (then the stage runs again).
bool push_recorded_result(lua_State* L, const StageRecord& record);
// The same for a stage whose result is {path_key = path, metrics = {...}}: pushes both.
bool push_recorded_pair(lua_State* L, const StageRecord& record, const char* path_key);

// The records of option `key`: a JSONL path or a Lua list of tables. Throws LuaError.
std::vector<nlohmann::json> stage_records(StageOptions& o, const char* key);
// "{field}" placeholders replaced by the record's values. Throws LuaError for a missing field.
std::string fill_template(const std::string& text, const nlohmann::json& record);
// The prompts of option "data": option "prompt" as a template or a function of the record, else the
// record's "prompt" field; encoded with `tok` (BOS first when it has one). Without option "prompt", a
// conversational record (rl/experiment/conversation.h) is rendered with option "template" instead.
std::vector<PromptExample> stage_prompts(StageOptions& o, const Tokenizer& tok);
// The text a record gives for option `key` (pushed at the top of the stack by o.push(key), of Lua type
// `type`): the option as a template or a function of the record, else the record's own string field.
std::string record_text(StageOptions& o, int type, const char* key, const nlohmann::json& record, size_t index);
// Each record's completion for SFT: option "completion" as a template or a function of the record,
// else the record's "completion" field; "" for a conversational record without option "completion".
std::vector<std::string> stage_completions(StageOptions& o, const std::vector<PromptExample>& prompts);

}  // namespace grpo
