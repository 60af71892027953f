#include "rl/experiment/experiment.h"

#include <fmt/core.h>
#include <lua.hpp>

#include <filesystem>
#include <stdexcept>
#include <string>

#include "rewards/lua_trampoline.h"
#include "rl/distributed/distributed.h"
#include "rl/experiment/check_run.h"
#include "rl/experiment/experiment_stages.h"
#include "rl/experiment/rerun_from.h"
#include "rl/experiment/stage_option_specs.h"
#include "rl/experiment/stage_options.h"

namespace grpo {

namespace fs = std::filesystem;

namespace {

// Runs the script in a fresh Lua state bound to `state`; returns the script's error (file:line), or "".
std::string run_script(const ExperimentOptions& options, ExperimentState& state) {
  lua_State* L = luaL_newstate();
  if (!L) throw std::runtime_error("cannot create a Lua state");
  bind_state(L, &state);
  luaL_openlibs(L);
  // C++ exceptions must not unwind through Lua's C frames, nor Lua errors jump over C++ ones: every
  // function runs behind a trampoline that turns its exceptions into Lua errors carrying the script's
  // file and line (rewards/lua_trampoline.h). A checking run checks the stages instead of running them.
  static const luaL_Reg functions[] = {{"init", lua_trampoline<checkable<stage_init>>},
                                       {"pretrain", lua_trampoline<checkable<stage_pretrain>>},
                                       {"train", lua_trampoline<checkable<stage_train>>},
                                       {"eval", lua_trampoline<checkable<stage_eval>>},
                                       {"sft", lua_trampoline<checkable<stage_sft>>},
                                       {"sample", lua_trampoline<checkable<stage_sample>>},
                                       {"distill", lua_trampoline<checkable<stage_distill>>},
                                       {"rejection_sample", lua_trampoline<checkable<stage_rejection_sample>>},
                                       {"shuffle", lua_trampoline<checkable<lua_shuffle>>},
                                       {"split", lua_trampoline<checkable<lua_split>>},
                                       {"mix", lua_trampoline<checkable<lua_mix>>},
                                       {"read_jsonl", lua_trampoline<checkable<lua_read_jsonl>>},
                                       {"write_jsonl", lua_trampoline<checkable<lua_write_jsonl>>},
                                       {nullptr, nullptr}};
  luaL_newlib(L, functions);
  lua_newtable(L);  // the metatable: a misspelt grpo.<name> is an error naming the closest function
  lua_pushcfunction(L, lua_trampoline<checkable<unknown_grpo_function>>);
  lua_setfield(L, -2, "__index");
  lua_setmetatable(L, -2);
  lua_pushstring(L, options.run_directory.c_str());
  lua_setfield(L, -2, "run_dir");
  lua_setglobal(L, "grpo");
  // The script's own folder is on the module path, so examples can `require` their task module.
  fs::path folder = fs::absolute(options.script).parent_path();
  lua_getglobal(L, "grpo");
  lua_pushstring(L, folder.string().c_str());
  lua_setfield(L, -2, "script_dir");
  lua_pop(L, 1);
  std::string path_setup = fmt::format("package.path = '{}/?.lua;' .. package.path", folder.string());
  luaL_dostring(L, path_setup.c_str());
  // The quiet check before a run keeps the script's own printing for the run itself.
  if (state.check && state.check->quiet) luaL_dostring(L, "print = function() end");

  std::string error;
  if (luaL_loadfile(L, options.script.c_str()) != LUA_OK || lua_pcall(L, 0, 0, 0) != LUA_OK) {
    error = lua_tostring(L, -1) ? lua_tostring(L, -1) : "unknown error";
  }
  lua_close(L);
  return error;
}

void warn_unused_overrides(const ExperimentOptions& options, const ExperimentState& state) {
  for (const auto& [key, value] : options.overrides)
    if (!state.used_overrides.count(key))
      fmt::print(stderr, "warning: --set {}={} was never used (no stage read that option)\n", key, value);
}

}  // namespace

void run_experiment(const ExperimentOptions& options) {
  // --set is checked against the stages' declarations before the script can do anything.
  const std::map<std::string, nlohmann::json> overrides = parse_overrides(options.overrides);
  if (options.check != ScriptCheck::skip) {
    CheckRun check;
    check.quiet = options.check == ScriptCheck::first;
    ExperimentState state{options, overrides, {}, 0, &check};
    const std::string error = run_script(options, state);
    // A grpo function's error is the script's mistake. The script's own code may fail on a stand-in
    // (an assert on a stage's metrics, say): then the check ends there, with a warning, and the run
    // goes on.
    if (!error.empty() && check.function_failed && check.quiet)
      throw std::runtime_error(fmt::format("{}\n(found by the check of the whole script before running it: nothing ran; "
                                           "`grpo run --check` shows what it checks, --no-check skips it)", error));
    if (!error.empty() && check.function_failed) throw std::runtime_error(error);
    const std::string checked = fmt::format("{} stage call{} checked", check.stages_checked, check.stages_checked == 1 ? "" : "s");
    if (!error.empty())
      fmt::print(stderr, "warning: the check of the script stopped at an error of its own code, after {} (stand-in "
                         "results read as 0 and empty lists there: an assert on a stage's result fails): {}\n",
                 checked, error);
    if (options.check == ScriptCheck::only) {
      warn_unused_overrides(options, state);
      if (error.empty()) fmt::print(stderr, "check passed: {}; nothing was trained or written\n", checked);
      return;
    }
  }
  fs::create_directories(options.run_directory);
  if (!options.rerun_from.empty()) {
    // Rank 0 moves every rank's records; the others wait for it before reading theirs.
    if (!options.distributed || options.distributed->rank() == 0)
      for (const std::string& moved : set_aside_stages_from(options.run_directory, options.rerun_from))
        fmt::print(stderr, "[rerun-from {}] set aside {}\n", options.rerun_from, moved);
    if (options.distributed) options.distributed->barrier();
  }
  ExperimentState state{options, overrides, {}, 0};
  const std::string error = run_script(options, state);
  if (!error.empty()) throw std::runtime_error(error);
  warn_unused_overrides(options, state);
}

}  // namespace grpo
