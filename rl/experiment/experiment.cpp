#include "rl/experiment/experiment.h"

#include <fmt/core.h>
#include <lua.hpp>

#include <filesystem>
#include <stdexcept>
#include <string>

#include "rewards/lua_trampoline.h"
#include "rl/experiment/experiment_stages.h"
#include "rl/experiment/stage_option_specs.h"
#include "rl/experiment/stage_options.h"

namespace grpo {

namespace fs = std::filesystem;

void run_experiment(const ExperimentOptions& options) {
  // --set is checked against the stages' declarations before the script can do anything.
  ExperimentState state{options, parse_overrides(options.overrides), {}, 0};
  fs::create_directories(options.run_directory);
  lua_State* L = luaL_newstate();
  if (!L) throw std::runtime_error("cannot create a Lua state");
  bind_state(L, &state);
  luaL_openlibs(L);
  // C++ exceptions must not unwind through Lua's C frames, nor Lua errors jump over C++ ones: every
  // function runs behind a trampoline that turns its exceptions into Lua errors carrying the script's
  // file and line (rewards/lua_trampoline.h).
  static const luaL_Reg functions[] = {{"init", lua_trampoline<stage_init>},
                                       {"pretrain", lua_trampoline<stage_pretrain>},
                                       {"train", lua_trampoline<stage_train>},
                                       {"eval", lua_trampoline<stage_eval>},
                                       {"sft", lua_trampoline<stage_sft>},
                                       {"sample", lua_trampoline<stage_sample>},
                                       {"shuffle", lua_trampoline<lua_shuffle>},
                                       {"split", lua_trampoline<lua_split>},
                                       {"read_jsonl", lua_trampoline<lua_read_jsonl>},
                                       {"write_jsonl", lua_trampoline<lua_write_jsonl>},
                                       {nullptr, nullptr}};
  luaL_newlib(L, functions);
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

  std::string error;
  if (luaL_loadfile(L, options.script.c_str()) != LUA_OK || lua_pcall(L, 0, 0, 0) != LUA_OK) {
    error = lua_tostring(L, -1) ? lua_tostring(L, -1) : "unknown error";
  }
  lua_close(L);
  if (!error.empty()) throw std::runtime_error(error);
  for (const auto& [key, value] : options.overrides)
    if (!state.used_overrides.count(key))
      fmt::print(stderr, "warning: --set {}={} was never used (no stage read that option)\n", key, value);
}

}  // namespace grpo
