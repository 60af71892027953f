#pragma once
// Experiments as Lua scripts: `grpo run x.lua` executes a trusted script (full Lua, unlike reward rules)
// with a `grpo` table of stages. Each stage takes one table of options, validated up front (an unknown
// key is an error naming it and the closest known key), and returns what later stages take:
//
//   local base = grpo.init{config = "model.json", tokenizer = {chars = "0123456789+=<>/"}, out = "base"}
//   base = grpo.pretrain{model = base, data = corpus, steps = 300}
//   local rl = grpo.train{model = base, data = train, prompt = "{question}", rules = "rules.lua", steps = 50}
//   local m = grpo.eval{model = rl, data = test, prompt = "{question}", rules = "rules.lua", n = 8}
//   print(m["pass@1"])
//
// Models are checkpoint directories (strings), so every stage's result is on disk, loadable by any
// later stage, by `grpo sample`, or by transformers. docs/experiments.md lists every option.
#include <map>
#include <string>

#include "policy/device.h"

namespace grpo {

class Distributed;  // rl/distributed/distributed.h

// How `grpo run` checks a script (rl/experiment/check_run.h) before it runs it.
enum class ScriptCheck {
  first,  // check the whole script quietly, then run it (the default: a typo in a late stage costs seconds)
  only,   // check it and say what was checked (grpo run --check); nothing runs
  skip,   // run it unchecked (grpo run --no-check)
};

struct ExperimentOptions {
  std::string script;
  std::string run_directory;                    // stage outputs are relative to it
  std::map<std::string, std::string> overrides; // "stage.key" -> value, from --set
  // Data parallel: every rank runs the script; grpo.train shares its batches over the ranks, and only
  // rank 0 writes outputs (the others read them from the same run directory). Null: one process.
  Distributed* distributed = nullptr;
  // Where every stage puts the models it loads (grpo run --device/--dtype; policy/device.h).
  Placement placement;
  ScriptCheck check = ScriptCheck::first;
  // The dtype of saved weights: "auto" (the dtype the model trains in: bfloat16 on CUDA by default, else
  // float32), "float32" or "bfloat16" (grpo run --save-dtype).
  std::string save_dtype = "auto";
  // Run this stage and the later ones again (grpo run --rerun-from; rl/experiment/rerun_from.h): after the
  // check, their records and checkpoints are set aside. Empty: reuse and resume as recorded.
  std::string rerun_from;
};

// Runs the script (after checking it, as options.check says). Throws std::invalid_argument before the
// script starts when an override names no declared option or has a value it does not take
// (stage_option_specs.h: parse_overrides), and std::runtime_error with the Lua error (file:line) when the
// check or the script fails.
void run_experiment(const ExperimentOptions& options);

}  // namespace grpo
