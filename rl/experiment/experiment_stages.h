#pragma once
// The functions behind the `grpo` table of an experiment script (rl/experiment/experiment.h lists the API), one
// per stage or helper, as Lua C functions: argument 1 is the options table (rl/experiment/stage_options.h), the
// results are pushed. They throw (LuaError for the script's mistakes) and never raise a Lua error
// themselves; run_experiment registers each behind lua_trampoline (rewards/lua_trampoline.h), which
// raises the exception's message in the script with its file and line once every C++ frame has unwound.
#include <lua.hpp>

#include <string>

#include "policy/causal_lm.h"
#include "policy/tokenizer/tokenizer.h"

namespace grpo {

// rl/experiment/model_stages.cpp
int stage_init(lua_State* L);      // grpo.init{config, tokenizer, seed, out} -> model dir
int stage_pretrain(lua_State* L);  // grpo.pretrain{model, data, ...} -> model dir
int stage_train(lua_State* L);     // grpo.train{model, data, prompt, rules, ...} -> model dir (GRPO)
int stage_eval(lua_State* L);      // grpo.eval{model, data, prompt, rules, n, ...} -> metrics table

// rl/experiment/distill_stage.cpp
int stage_distill(lua_State* L);   // grpo.distill{teacher, student, mode, data, prompt, ...} -> model dir, metrics

// rl/experiment/data_stages.cpp
int stage_sft(lua_State* L);       // grpo.sft{model, data, prompt, completion, ...} -> model dir, metrics
int stage_sample(lua_State* L);    // grpo.sample{model, data, prompt, rules, n, ...} -> path, samples, metrics
int stage_rejection_sample(lua_State* L);  // grpo.rejection_sample{..., keep, max_per_prompt} -> kept path, stats
int lua_shuffle(lua_State* L);     // grpo.shuffle(list [, seed]) -> list
int lua_split(lua_State* L);       // grpo.split(list, {test, seed}) -> train, test
int lua_mix(lua_State* L);         // grpo.mix{ {data, weight, name}, ..., n, seed } -> records, stats
int lua_read_jsonl(lua_State* L);  // grpo.read_jsonl(path) -> list
int lua_write_jsonl(lua_State* L); // grpo.write_jsonl(path, list) -> path

// A model directory as every stage writes it: the HF checkpoint (config.json, generation_config.json, the
// weights in the run's save dtype: grpo run --save-dtype, by default the dtype the model trains in) and the
// tokenizer files (tokenizer.json, tokenizer_config.json with its chat template).
void save_model(lua_State* L, CausalLM& model, const Tokenizer& tok, const std::string& dir);

}  // namespace grpo
