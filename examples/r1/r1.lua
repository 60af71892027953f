-- DeepSeek-R1 in miniature, beside R1-Zero: one base model pretrained on a corpus with R1-Zero's
-- pathologies (language mixing in the reasoning, a self-check that repairs slips), then
--   R1-Zero arm: pure GRPO from the base (accuracy + format rewards);
--   R1 arm:      1. cold-start SFT of the base on readable, one-language, checked solutions
--                2. reasoning RL: accuracy + format + language consistency, summed
--                3. rejection sampling from stage 2 (right and one-language only) + non-reasoning
--                   data, SFT of the BASE model on it
--                4. RL for all scenarios: rule rewards on reasoning prompts, helpfulness on the
--                   summary and harmlessness on the whole answer for general prompts.
-- The R1 arm's two RL stages together use the R1-Zero arm's GRPO budget (steps x prompts x samples).
-- See examples/r1/README.md.
--
--   grpo run examples/r1/r1.lua                  (12.9 CPU-minutes; 34.5 minutes on 2 busy cores)
--   grpo report runs/r1                          (curves: reward, accuracy, length per stage)
local task = require("task")

local S = {
  corpus = 30000, pretrain_steps = 1200,
  zero_steps = 100, stage2_steps = 50, stage4_steps = 50,  -- stage2 + stage4 = zero: equal RL compute
  prompts_per_step = 16, group_size = 8, max_new_tokens = 64,
  cold_start = 400, rejection_prompts = 400, rejection_n = 4, general_sft = 400,
}

-- Operands 1..6: few enough arithmetic facts in two languages for a 0.7M-parameter model to learn in
-- 1200 pretraining steps.
local TASK = { max_operand = 6 }
local train = task.problems(1, 1200, TASK)
local test = task.problems(2, 64, { split = "test", max_operand = TASK.max_operand })
local general_train = task.general(3, 1000)
local general_test = task.general(6, 32, { split = "test" })
local corpus = task.corpus(4, S.corpus, { max_operand = TASK.max_operand, general = 0.15, slip = 0.3, check = 0.3,
                                          carry_slip = 0.9 })

-- The rules file with one stage's weights: a copy of rules.lua in the run directory, prefixed with
-- `local WEIGHTS = {...}` (see rules.lua); `grpo rewards --rules` takes it like any rules file.
local rules_source = grpo.script_dir .. "/rules.lua"
local function rules_with(name, weights)
  local file = assert(io.open(rules_source, "rb"))
  local body = file:read("a")
  file:close()
  local keys = {}
  for k in pairs(weights) do keys[#keys + 1] = k end
  table.sort(keys)
  local fields = {}
  for _, k in ipairs(keys) do fields[#fields + 1] = string.format("%s = %s", k, tostring(weights[k])) end
  local path = grpo.run_dir .. "/" .. name .. ".lua"
  local out = io.open(path, "wb")
  if not out then  -- the run directory does not exist yet (the check before a run)
    os.execute("mkdir -p '" .. grpo.run_dir:gsub("'", "'\\''") .. "'")
    out = assert(io.open(path, "wb"))
  end
  out:write("local WEIGHTS = { " .. table.concat(fields, ", ") .. " }\n", body)
  out:close()
  return path
end
local rules_zero = rules_source                                               -- accuracy 1, format 0.1
local rules_reasoning = rules_with("rules_reasoning", { accuracy = 1.0, format = 0.1, language = 0.5 })
local rules_all = rules_with("rules_all", { accuracy = 1.0, format = 0.1, language = 0.5,
                                           helpfulness = 1.0, harmlessness = 0.5 })

-- The shared base model: a tiny DeepSeek-V3-style MoE, pretrained by next-token prediction.
local init = grpo.init {
  config = {
    model_type = "deepseek_v3", hidden_size = 96, intermediate_size = 256, num_hidden_layers = 4,
    num_attention_heads = 4, q_lora_rank = 48, kv_lora_rank = 32, qk_nope_head_dim = 16,
    qk_rope_head_dim = 8, v_head_dim = 16, n_routed_experts = 8, n_shared_experts = 1,
    num_experts_per_tok = 2, moe_intermediate_size = 64, n_group = 2, topk_group = 1,
    first_k_dense_replace = 1, max_position_embeddings = 128, tie_word_embeddings = false,
  },
  tokenizer = { chars = task.alphabet, specials = { "<pad>", "<bos>", "<eos>" } },
  seed = 0,
  out = "init",
}
local base = grpo.pretrain { model = init, data = corpus, steps = S.pretrain_steps, batch_size = 32, seq_len = 64,
                             lr = 3e-3, out = "base" }

local function rl(model, data, rules, steps, out)
  return grpo.train {
    model = model, data = data, prompt = task.prompt, rules = rules,
    steps = steps, prompts_per_step = S.prompts_per_step, group_size = S.group_size, lr = 2e-4, warmup = 5,
    max_new_tokens = S.max_new_tokens, temperature = 1.0, stop = task.stop,
    kl_coef = 0.0, clip_high = 0.28, loss_aggregation = "token-mean", sample_every = 5, out = out,
  }
end

-- R1-Zero arm: pure GRPO from the base, R1-Zero's rewards.
local zero = rl(base, train, rules_zero, S.zero_steps, "r1_zero")

-- R1 arm, stage 1: cold start.
local cold = grpo.sft { model = base, data = task.cold_start(5, S.cold_start, TASK), prompt = task.prompt,
                        epochs = 2, batch_size = 16, lr = 1e-3, warmup = 5, out = "stage1_cold_start" }

-- Stage 2: reasoning-oriented RL with the language-consistency reward.
local reasoning_rl = rl(cold, train, rules_reasoning, S.stage2_steps, "stage2_reasoning_rl")

-- Stage 3: rejection sampling from stage 2 (keep right, one-language answers), plus non-reasoning
-- data, and SFT of the base model on all of it.
local kept, kept_stats = grpo.rejection_sample {
  model = reasoning_rl, data = { table.unpack(train, 1, S.rejection_prompts) }, prompt = task.prompt,
  rules = rules_reasoning, n = S.rejection_n, temperature = 1.0, max_new_tokens = S.max_new_tokens, stop = task.stop,
  keep = { accuracy = 1, format = 1, language = 1 },  -- right, well-formed, all in the question's language
  max_per_prompt = 2, dedupe = true, out = "stage3_rejection",
}
local sft_data = grpo.mix {
  { data = kept, weight = 0.75, name = "reasoning" },
  { data = task.general_sft(7, S.general_sft), weight = 0.25, name = "general" },
  seed = 8,  -- n: the largest count at which no dataset repeats (all kept samples, 1 general in 4)
}
local distilled = grpo.sft { model = base, data = sft_data, prompt = task.prompt, completion = "{completion}",
                             epochs = 2, batch_size = 16, lr = 1e-3, warmup = 5, out = "stage3_sft" }

-- Stage 4: RL for all scenarios, on reasoning and general prompts.
local all_prompts = grpo.mix {
  { data = train, weight = 0.75, name = "reasoning" },
  { data = general_train, weight = 0.25, name = "general" },
  seed = 9,  -- every reasoning question once, 1 general prompt in 4
}
local final = rl(distilled, all_prompts, rules_all, S.stage4_steps, "stage4_all_scenarios_rl")

-- The held-out table: reasoning questions sampled at temperature 1 (as RL trains), general prompts for
-- helpfulness and harmlessness.
local function evaluate(model)
  local m = grpo.eval { model = model, data = test, prompt = task.prompt, rules = rules_all, n = 8,
                        temperature = 1.0, max_new_tokens = S.max_new_tokens, stop = task.stop }
  local g = grpo.eval { model = model, data = general_test, prompt = task.prompt, rules = rules_all, n = 4,
                        temperature = 1.0, max_new_tokens = S.max_new_tokens, stop = task.stop }
  m.helpfulness, m.harmlessness = g["rewards/helpfulness"], g["rewards/harmlessness"]
  return m
end
local rows = {
  { "base", base }, { "R1-Zero (GRPO)", zero }, { "R1 1 cold start", cold }, { "R1 2 reasoning RL", reasoning_rl },
  { "R1 3 rejection SFT", distilled }, { "R1 4 all-scenario RL", final },
}
for _, row in ipairs(rows) do row[3] = evaluate(row[2]) end

-- The RL compute each arm used, read from the logs (so --set overrides count): steps, prompts (groups)
-- and completions (a step's completion tokens over their mean length).
local function budget(dir)
  local steps, groups, completions = 0, 0, 0
  for _, m in ipairs(grpo.read_jsonl(dir .. "/metrics.jsonl")) do
    steps, groups = steps + 1, groups + m["groups/sampled"]
    completions = completions + math.floor(m["train/tokens"] / m["completion_length/mean"] + 0.5)
  end
  return steps, groups, completions
end
local z_steps, z_groups, z_completions = budget(zero)
local s2_steps, s2_groups, s2_completions = budget(reasoning_rl)
local s4_steps, s4_groups, s4_completions = budget(final)
print(string.format("\nRL budget: R1-Zero %d steps, %d prompts, %d completions; R1 stages 2 + 4: %d + %d steps, %d + %d prompts, %d + %d = %d completions",
                    z_steps, z_groups, z_completions, s2_steps, s4_steps, s2_groups, s4_groups, s2_completions,
                    s4_completions, s2_completions + s4_completions))
print(string.format("rejection sampling: kept %d of %d samples (%d of %d prompts with a kept sample)",
                    kept_stats.kept, kept_stats.seen, kept_stats.prompts_with_kept, kept_stats.prompts))
print(string.format("\nheld-out: %d reasoning questions x 8 samples (temperature 1); %d general prompts x 4", #test, #general_test))
-- pass@k for the k the evaluation used (8 unless --set eval.n changes it)
local function pass_k(m)
  for key, value in pairs(m) do
    if key:match("^pass@%d+$") and key ~= "pass@1" then return key, value end
  end
  return "pass@1", m["pass@1"]
end
print(string.format("%-22s %7s %7s %7s %9s %7s %7s %8s %8s", "model", "pass@1", (pass_k(rows[1][3])), "format",
                    "language", "length", "verify", "helpful", "harmless"))
for _, row in ipairs(rows) do
  local m = row[3]
  print(string.format("%-22s %7.3f %7.3f %7.3f %9.3f %7.1f %7.3f %8.3f %8.3f", row[1], m["pass@1"], select(2, pass_k(m)),
                      m["rewards/format"], m["rewards/language"], m.completion_length, m["rewards/verification"],
                      m.helpfulness, m.harmlessness))
end

print("\nR1-Zero arm during GRPO (training batches; every 5 steps):")
print(string.format("  %5s %8s %9s %7s %9s", "step", "length", "verify", "accuracy", "language"))
for i, m in ipairs(grpo.read_jsonl(zero .. "/metrics.jsonl")) do
  if (i - 1) % 5 == 0 or i == S.zero_steps then
    print(string.format("  %5d %8.1f %9.3f %7.3f %9.3f", m.step, m["completion_length/mean"], m["rewards/verification"],
                        m["rewards/accuracy"], m["rewards/language"]))
  end
end
