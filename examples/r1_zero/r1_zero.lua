-- DeepSeek-R1-Zero in miniature: a tiny DeepSeek-style MoE policy (MLA + shared/routed experts) is
-- pretrained by next-token prediction on noisy worked solutions, then trained with pure GRPO and rule
-- rewards (format + accuracy) — no supervised fine-tuning on correct answers.
--
--   grpo run examples/r1_zero/r1_zero.lua            (about 6 minutes on 2 idle CPU cores)
--   grpo run examples/r1_zero/r1_zero.lua --set train.steps=10 --set pretrain.steps=50   (a quick look)
local task = require("task")
local rules = grpo.script_dir .. "/rules.lua"

-- Three one-digit operands with + and -: answers 0..27, small enough for a 0.7M-parameter model to
-- learn the arithmetic by next-token prediction in a few minutes.
local TASK = { ops = "+-", max_operand = 9 }
local train = task.problems(1, 4000, TASK)
local test = task.problems(2, 64, { split = "test", ops = TASK.ops, max_operand = TASK.max_operand })
-- Four worked solutions in five reach a wrong answer (a slipped step, a slipped final result, or a
-- miscopied answer) and one in five is badly formatted. The right value is still the most frequent
-- continuation at every step, so the base model "knows" the arithmetic (its greedy answers are mostly
-- right) but, sampling like its corpus, is usually wrong: the latent ability R1-Zero's RL brings out.
local corpus = task.corpus(3, 30000, { ops = TASK.ops, max_operand = TASK.max_operand, wrong = 0.8, bad_format = 0.2 })

-- 1. A tiny DeepSeek-V3-style model and a character-level tokenizer.
local base = grpo.init {
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

-- 2. Pretraining on worked solutions that are often wrong or badly formatted.
base = grpo.pretrain { model = base, data = corpus, steps = 1200, batch_size = 32, seq_len = 64, lr = 3e-3, out = "base" }

-- Sampled at temperature 1 (what GRPO trains), and greedy (the model's most likely answer).
local function evaluate(model)
  local sampled = grpo.eval { model = model, data = test, prompt = task.prompt, rules = rules, n = 8,
                              temperature = 1.0, max_new_tokens = 40, stop = task.stop }
  local greedy = grpo.eval { model = model, data = test, prompt = task.prompt, rules = rules, n = 1,
                             temperature = 0.0, max_new_tokens = 40, stop = task.stop }
  sampled.greedy = greedy["pass@1"]
  return sampled
end
local before = evaluate(base)

-- 3. Pure GRPO from the base model, with the R1-Zero template and rule rewards.
local trained = grpo.train {
  model = base, data = train, prompt = task.prompt, rules = rules,
  steps = 80, prompts_per_step = 16, group_size = 8, lr = 2e-4, warmup = 5,
  max_new_tokens = 40, temperature = 1.0, stop = task.stop,
  kl_coef = 0.0, clip_high = 0.28, loss_aggregation = "token-mean", out = "grpo",
}
local after = evaluate(trained)

-- 4. Held-out results and the completion-length curve.
print(string.format("\nheld-out, %d questions:", #test))
print(string.format("%-10s %10s %10s %10s %10s %10s", "model", "pass@1", "pass@8", "greedy", "format", "length"))
for _, row in ipairs({ { "base", before }, { "GRPO", after } }) do
  local m = row[2]
  print(string.format("%-10s %10.3f %10.3f %10.3f %10.3f %10.1f", row[1], m["pass@1"], m["pass@8"], m.greedy,
                      m["rewards/format"], m.completion_length))
end
print("\ncompletion length and reward during GRPO (every 5 steps):")
for i, m in ipairs(grpo.read_jsonl(trained .. "/metrics.jsonl")) do
  if (i - 1) % 5 == 0 then
    print(string.format("  step %3d  length %5.1f  reward %.3f  accuracy %.3f", m.step, m["completion_length/mean"], m.reward, m.accuracy or 0))
  end
end
print(string.format("\nheld-out pass@1: %.3f -> %.3f (%+.1f points, x%.2f)", before["pass@1"], after["pass@1"],
                    100 * (after["pass@1"] - before["pass@1"]), after["pass@1"] / math.max(before["pass@1"], 1e-9)))
