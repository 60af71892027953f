-- The student compute each arm of distill.lua needs to come within 5 points of the teacher's held-out
-- pass@1: every arm again at 5, 10 and 20 optimizer steps (of 128 completions each, as in distill.lua),
-- from the teacher and the student base that distill.lua made.
--
--   grpo run examples/distill/distill.lua --out runs/distill          (first)
--   DISTILL_RUN=runs/distill grpo run examples/distill/compute_sweep.lua --out runs/distill_sweep
local task = dofile(grpo.script_dir .. "/../r1_zero/task.lua")
local rules = grpo.script_dir .. "/../r1_zero/rules.lua"
local run = os.getenv("DISTILL_RUN") or "runs/distill"
local teacher, student = run .. "/teacher", run .. "/student_base"

local TASK = { ops = "+-", max_operand = 9 }
local train = task.problems(1, 4000, TASK)
local test = task.problems(2, 64, { split = "test", ops = TASK.ops, max_operand = TASK.max_operand })
local function pass1(model)
  return grpo.eval { model = model, data = test, prompt = task.prompt, rules = rules, n = 8, temperature = 1.0,
                     max_new_tokens = 40, stop = task.stop }["pass@1"]
end

local t = pass1(teacher)
print(string.format("teacher pass@1 %.3f; within 5 points: >= %.3f", t, t - 0.05))
print(string.format("%-12s %8s %8s %8s", "arm", "5 steps", "10", "20"))
local arms = { "+ GRPO", "+ trace SFT", "+ logit KD", "+ on-policy" }
local results = {}
for _, steps in ipairs({ 5, 10, 20 }) do
  -- Teacher samples for the two offline arms: 8 per prompt, as many prompts as the steps use.
  local prompts = {}
  for i = 1, 16 * steps do prompts[i] = train[i] end
  local common = { teacher = teacher, student = student, prompt = task.prompt, max_new_tokens = 40, stop = task.stop,
                   temperature = 1.0, steps = steps, seed = 7, lr = 1e-3, warmup = math.min(5, steps - 1) }
  local function with(options)
    local o = {}
    for k, v in pairs(common) do o[k] = v end
    for k, v in pairs(options) do o[k] = v end
    return o
  end
  local models = {
    ["+ GRPO"] = grpo.train { model = student, data = train, prompt = task.prompt, rules = rules, steps = steps,
                              prompts_per_step = 16, group_size = 8, lr = 2e-4, warmup = math.min(5, steps - 1),
                              max_new_tokens = 40, temperature = 1.0, stop = task.stop, kl_coef = 0.0,
                              out = "grpo_" .. steps },
    ["+ trace SFT"] = grpo.distill(with { mode = "traces", data = prompts, rules = rules, keep = { accuracy = 1, format = 1 },
                                         n = 8, batch_size = 128, out = "traces_" .. steps }),
    ["+ logit KD"] = grpo.distill(with { mode = "logits", data = prompts, n = 8, batch_size = 128, micro_batch_size = 64,
                                        out = "logits_" .. steps }),
    ["+ on-policy"] = grpo.distill(with { mode = "on_policy", data = train, prompts_per_step = 16, group_size = 8,
                                         micro_batch_size = 64, lr = 2e-4, out = "on_policy_" .. steps }),
  }
  for _, arm in ipairs(arms) do
    results[arm] = results[arm] or {}
    results[arm][steps] = pass1(models[arm])
  end
end
for _, arm in ipairs(arms) do
  local r = results[arm]
  print(string.format("%-12s %8.3f %8.3f %8.3f", arm, r[5], r[10], r[20]))
end
