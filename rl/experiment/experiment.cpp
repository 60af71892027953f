#include "rl/experiment/experiment.h"

#include <fmt/core.h>
#include <lua.hpp>

#include <filesystem>
#include <stdexcept>
#include <string>

#include "rl/experiment/experiment_stages.h"
#include "rl/experiment/stage_options.h"

namespace grpo {
namespace {

namespace fs = std::filesystem;

// C++ exceptions must not unwind through Lua's C frames: each stage runs inside this guard, which
// turns them into Lua errors (with the script's file:line attached by luaL_error's caller info).
template <lua_CFunction F>
int guarded(lua_State* L) {
  std::string message;
  try {
    return F(L);
  } catch (const std::exception& e) {
    message = e.what();
  }
  return luaL_error(L, "%s", message.c_str());
}

}  // namespace

void run_experiment(const ExperimentOptions& options) {
  ExperimentState state{options, {}};
  fs::create_directories(options.run_directory);
  lua_State* L = luaL_newstate();
  if (!L) throw std::runtime_error("cannot create a Lua state");
  bind_state(L, &state);
  luaL_openlibs(L);
  static const luaL_Reg functions[] = {{"init", guarded<stage_init>},
                                       {"pretrain", guarded<stage_pretrain>},
                                       {"train", guarded<stage_train>},
                                       {"eval", guarded<stage_eval>},
                                       {"sft", guarded<stage_sft>},
                                       {"sample", guarded<stage_sample>},
                                       {"shuffle", guarded<lua_shuffle>},
                                       {"split", guarded<lua_split>},
                                       {"read_jsonl", guarded<lua_read_jsonl>},
                                       {"write_jsonl", guarded<lua_write_jsonl>},
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
