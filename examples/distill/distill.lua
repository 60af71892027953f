-- Distillation in miniature (DeepSeek-R1 §4.1: distilling a reasoner into a smaller dense model beats RL
-- on that small model). The teacher is the R1-Zero example's model (examples/r1_zero/: a tiny
-- DeepSeek-V3-style MoE, pretrained on noisy worked solutions, then GRPO); the student is a dense
-- Qwen2-style model with under a quarter of the teacher's parameters, pretrained on the same corpus.
-- Five student arms at equal student compute, one held-out table with the teacher's row.
--
--   grpo run examples/distill/distill.lua --out runs/distill
--   grpo run examples/distill/distill.lua --out /tmp/d --set pretrain.steps=20 --set train.steps=2 \
--     --set distill.steps=2 --set distill.n=1 --set eval.n=2          (seconds: every arm hands on its output)
--
-- Equal student compute: every student arm takes the same number of optimizer steps (`arm_steps`) of the
-- same number of completions (128: 16 prompts x 8 samples for GRPO and on-policy distillation, batches
-- of 128 teacher completions for trace SFT and logit KD), so the student's forward and backward passes
-- are equal; GRPO and on-policy distillation also pay for sampling with the student, the other two for
-- sampling with the teacher (teacher compute is not the student's and is reported in the wall times).
local task = dofile(grpo.script_dir .. "/../r1_zero/task.lua")
local rules = grpo.script_dir .. "/../r1_zero/rules.lua"

local TASK = { ops = "+-", max_operand = 9 }
local train = task.problems(1, 4000, TASK)
local test = task.problems(2, 64, { split = "test", ops = TASK.ops, max_operand = TASK.max_operand })
local corpus = task.corpus(3, 30000, { ops = TASK.ops, max_operand = TASK.max_operand, wrong = 0.8, bad_format = 0.2 })
local tokenizer = { chars = task.alphabet, specials = { "<pad>", "<bos>", "<eos>" } }
local seconds = {}
local function timed(name, f)
  local start = os.time()
  local a, b = f()
  seconds[name] = (seconds[name] or 0) + os.difftime(os.time(), start)
  return a, b
end

-- 1. The teacher: the R1-Zero example's stages and settings (init, pretrain, GRPO).
local teacher = timed("teacher", function()
  local init = grpo.init {
    config = {
      model_type = "deepseek_v3", hidden_size = 96, intermediate_size = 256, num_hidden_layers = 4,
      num_attention_heads = 4, q_lora_rank = 48, kv_lora_rank = 32, qk_nope_head_dim = 16,
      qk_rope_head_dim = 8, v_head_dim = 16, n_routed_experts = 8, n_shared_experts = 1,
      num_experts_per_tok = 2, moe_intermediate_size = 64, n_group = 2, topk_group = 1,
      first_k_dense_replace = 1, max_position_embeddings = 128, tie_word_embeddings = false,
    },
    tokenizer = tokenizer, seed = 0, out = "teacher_init",
  }
  local base = grpo.pretrain { model = init, data = corpus, steps = 1200, batch_size = 32, seq_len = 64, lr = 3e-3, out = "teacher_base" }
  return grpo.train {
    model = base, data = train, prompt = task.prompt, rules = rules,
    steps = 80, prompts_per_step = 16, group_size = 8, lr = 2e-4, warmup = 5,
    max_new_tokens = 40, temperature = 1.0, stop = task.stop,
    kl_coef = 0.0, clip_high = 0.28, loss_aggregation = "token-mean", out = "teacher",
  }
end)

-- 2. The student base: a dense Qwen2-style model (about 1/5 of the teacher's parameters), pretrained on
-- the same corpus with the same schedule, so every arm starts from a model that has seen the task's
-- (noisy) worked solutions, as R1's students were pretrained models.
local student = timed("student base", function()
  local init = grpo.init {
    config = { model_type = "qwen2", hidden_size = 64, intermediate_size = 192, num_hidden_layers = 3,
               num_attention_heads = 4, num_key_value_heads = 2, max_position_embeddings = 128,
               tie_word_embeddings = true },
    tokenizer = tokenizer, seed = 1, out = "student_init",
  }
  return grpo.pretrain { model = init, data = corpus, steps = 1200, batch_size = 32, seq_len = 64, lr = 3e-3, out = "student_base" }
end)

-- 3. The arms, each `arm_steps` student optimizer steps of 128 completions.
local arm_steps = 40
local common = { teacher = teacher, student = student, data = train, prompt = task.prompt, max_new_tokens = 40,
                 stop = task.stop, temperature = 1.0, steps = arm_steps, seed = 7 }
local function with(options)
  local t = {}
  for k, v in pairs(common) do t[k] = v end
  for k, v in pairs(options) do t[k] = v end
  return t
end
-- Teacher samples for trace SFT and logit KD: 8 per prompt for 640 prompts = 40 batches of 128.
local sampled_prompts = {}
for i = 1, 640 do sampled_prompts[i] = train[i] end

local arms = {}
arms.grpo = timed("+ GRPO", function()
  return grpo.train { model = student, data = train, prompt = task.prompt, rules = rules, steps = arm_steps,
                      prompts_per_step = 16, group_size = 8, lr = 2e-4, warmup = 5, max_new_tokens = 40,
                      temperature = 1.0, stop = task.stop, kl_coef = 0.0, out = "student_grpo" }
end)
arms.traces = timed("+ trace SFT", function()
  local ok, model = pcall(grpo.distill, with { mode = "traces", data = sampled_prompts, rules = rules,
                                               keep = { accuracy = 1, format = 1 }, n = 8, batch_size = 128, lr = 1e-3,
                                               warmup = 5, out = "student_traces" })
  if ok then return model end
  -- Only a teacher cut short by --set (a few pretraining steps) has no right answer to keep.
  if not tostring(model):find("kept none") then error(model, 0) end
  print("trace SFT: the teacher had no accepted sample to train on; the arm is the student base")
  return student
end)
arms.logits = timed("+ logit KD", function()
  return grpo.distill(with { mode = "logits", data = sampled_prompts, n = 8, batch_size = 128, micro_batch_size = 64,
                             lr = 1e-3, warmup = 5, out = "student_logits" })
end)
arms.on_policy = timed("+ on-policy", function()
  return grpo.distill(with { mode = "on_policy", prompts_per_step = 16, group_size = 8, micro_batch_size = 64,
                             distill_coef = 1.0, reward_coef = 0.0, lr = 2e-4, warmup = 5, out = "student_on_policy" })
end)

-- 4. One held-out table: 64 questions, 8 samples each at temperature 1 (what the arms were trained at).
local function evaluate(model)
  return grpo.eval { model = model, data = test, prompt = task.prompt, rules = rules, n = 8, temperature = 1.0,
                     max_new_tokens = 40, stop = task.stop }
end
local rows = {
  { "teacher (MoE)", teacher, "teacher" }, { "student base", student, "student base" },
  { "+ GRPO", arms.grpo, "+ GRPO" }, { "+ trace SFT", arms.traces, "+ trace SFT" },
  { "+ logit KD", arms.logits, "+ logit KD" }, { "+ on-policy", arms.on_policy, "+ on-policy" },
}
local results = {}
for _, row in ipairs(rows) do results[row[1]] = evaluate(row[2]) end

print(string.format("\nheld-out, %d questions x 8 samples (temperature 1):", #test))
print(string.format("%-14s %8s %8s %8s %8s %10s", "model", "pass@1", "pass@8", "format", "length", "wall s"))
for _, row in ipairs(rows) do
  local m = results[row[1]]
  print(string.format("%-14s %8.3f %8.3f %8.3f %8.1f %10.0f", row[1], m["pass@1"], m["pass@8"] or -1, m["rewards/format"],
                      m.completion_length, seconds[row[3]] or 0))
end
local best, best_name = -1, ""
for _, name in ipairs({ "+ trace SFT", "+ logit KD", "+ on-policy" }) do
  if results[name]["pass@1"] > best then best, best_name = results[name]["pass@1"], name end
end
local t = results["teacher (MoE)"]["pass@1"]
print(string.format("\nbest distilled student: %s, pass@1 %.3f = %.0f%% of the teacher's %.3f; GRPO alone %.3f",
                    best_name, best, 100 * best / math.max(t, 1e-9), t, results["+ GRPO"]["pass@1"]))

-- 5. Curves of the distillation arms (grpo report draws every metrics.jsonl of the run).
print("\nlogit KD (every 10 steps): per-token KL, student - teacher log-prob gap, argmax agreement")
local logit_curve = grpo.read_jsonl(arms.logits .. "/metrics.jsonl")
for i, m in ipairs(logit_curve) do
  if (i - 1) % 10 == 0 or i == #logit_curve then
    print(string.format("  step %3d  kl %.4f  gap %+.4f  agree %.3f", m.step, m["distill/kl"], m["distill/logprob_gap"],
                        m["distill/argmax_agreement"]))
  end
end
print("on-policy (every 10 steps): sampled reverse KL to the teacher, student length")
local on_policy_curve = grpo.read_jsonl(arms.on_policy .. "/metrics.jsonl")
for i, m in ipairs(on_policy_curve) do
  if (i - 1) % 10 == 0 or i == #on_policy_curve then
    print(string.format("  step %3d  reverse kl %.4f  length %.1f", m.step, m["distill/reverse_kl"], m["completion_length/mean"]))
  end
end
