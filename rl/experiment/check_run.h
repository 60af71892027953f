#pragma once
// Checking a script before it runs (`grpo run --check x.lua`, and the first pass of every `grpo run`):
// the script runs with each stage checked instead of run, so that a typo in the fourth stage costs
// seconds, not the three stages before it. A checked stage reads its options through its declarations
// as a run does (unknown keys, types, enums, required options, input paths), then, in begin_stage,
// reads its data (every record parsed, every prompt and completion rendered, encoded with the model's
// tokenizer when that model is on disk or is written by an earlier stage from one that is), loads its
// rules (syntax, shape) and scores the first record with them; and returns stand-ins for its results:
// the output path it would write, and tables whose fields read as 0 (metrics) or hold nothing (sample
// lists). Nothing is trained, loaded or written. An output path an earlier checked stage would write
// is accepted as an input path; grpo.read_jsonl of a file under it reads an empty list, and a file
// grpo.write_jsonl would write reads back what it was given.
#include <lua.hpp>
#include <nlohmann/json.hpp>

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace grpo {

class StageOptions;  // rl/experiment/stage_options.h
class Tokenizer;     // policy/tokenizer/tokenizer.h

// What a checking run knows of a path an earlier checked stage or grpo.write_jsonl would write.
struct PlannedOutput {
  std::shared_ptr<const Tokenizer> tokenizer;          // of the model written there; null if unknown
  std::optional<std::vector<nlohmann::json>> records;  // what grpo.write_jsonl was given
};

struct CheckRun {
  bool quiet = false;  // the first pass of a run: the script's print() is silenced, stages print nothing
  std::map<std::string, PlannedOutput> planned;  // by absolute, normalized path
  int stages_checked = 0;
  bool function_failed = false;  // a grpo function raised the error that ended the check
};

// Thrown by begin_stage (stage_options.h) in a checking run once the stage is checked; checkable_stage
// catches it and pushes the stand-ins. Not a std::exception, so nothing between the two can take it for
// an error.
struct StageChecked {
  std::string planned_output;  // the stage's `out` as it would write it; empty for stages that write nothing
};

// The path as the planned-output map keys it.
std::string planned_key(const std::string& path);
// The planned output at `path` or one of the folders above it; null when none (or when not checking).
const PlannedOutput* planned_output(lua_State* L, const std::string& path);

// The checks of one stage call described above; prints one line naming the stage and the script's line
// unless quiet. Throws LuaError naming the stage and what is wrong, else StageChecked. `made` is the
// tokenizer of the model the stage writes when the stage makes one (grpo.init); other stages' outputs
// keep their input model's.
[[noreturn]] void check_stage(StageOptions& o, std::shared_ptr<const Tokenizer> made);

// Pushes a checked stage's stand-in results: with an output path, (path, list, metrics); without, (metrics).
int push_checked_results(lua_State* L, const StageChecked& checked);

// In a checking run, records that a grpo function failed (its error ends the check as an error; an
// error of the script's own code, which may come from a stand-in result, ends it with a warning).
void note_function_failure(lua_State* L);

// The entry every function of the grpo table is registered with (inside lua_trampoline): runs it, or,
// for a stage in a checking run, returns the stage's stand-ins.
template <lua_CFunction function>
int checkable(lua_State* L) {
  try {
    return function(L);
  } catch (const StageChecked& checked) {
    return push_checked_results(L, checked);
  } catch (...) {
    note_function_failure(L);
    throw;
  }
}

// The grpo table's __index: grpo.<name> for a name it lacks is an error naming the closest function
// (a misspelt stage fails in the check, not when the script reaches it).
int unknown_grpo_function(lua_State* L);

}  // namespace grpo
