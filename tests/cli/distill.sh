#!/usr/bin/env bash
# grpo.distill end to end, seconds: a teacher (a tiny DeepSeek-style MoE) taught a mapping by SFT, a
# smaller dense student distilled from it in each mode (traces with a keep filter, logits on teacher
# samples and on dataset completions with top-k, on_policy pure and mixed with a reward); each mode
# writes its model and metrics; a rerun returns the recorded results; and the bad inputs get clear errors
# (a tokenizer mismatch naming both directories, a missing teacher, vocabulary sizes that differ).
set -euo pipefail
grpo=$1
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

cat > "$dir/rules.lua" <<'LUA'
return { { name = "accuracy", rule = function(s) return s.completion == s.answer and 1 or 0 end } }
LUA
cat > "$dir/common.lua" <<'LUA'
local letters = { "a", "b", "c", "d", "e" }
local records = {}
for i = 1, 40 do
  local d = (i - 1) % 5
  records[#records + 1] = { question = tostring(d), answer = letters[d + 1] }
end
local M = { records = records, rules = grpo.script_dir .. "/rules.lua", prompt = "q{question}:" }
local tokenizer = { chars = "abcdeq01234:" }
M.teacher = grpo.init { config = { model_type = "deepseek_v3", hidden_size = 32, intermediate_size = 64, num_hidden_layers = 2,
                                   num_attention_heads = 4, q_lora_rank = 16, kv_lora_rank = 16, qk_nope_head_dim = 8,
                                   qk_rope_head_dim = 4, v_head_dim = 8, n_routed_experts = 4, n_shared_experts = 1,
                                   num_experts_per_tok = 2, moe_intermediate_size = 32, n_group = 1, topk_group = 1,
                                   first_k_dense_replace = 1 },
                        tokenizer = tokenizer, seed = 1, out = "teacher_init" }
M.teacher = grpo.sft { model = M.teacher, data = records, prompt = M.prompt, completion = "{answer}", steps = 60,
                       batch_size = 10, lr = 2e-2, warmup = 5, max_len = 16, out = "teacher" }
M.student = grpo.init { config = { model_type = "qwen2", hidden_size = 16, intermediate_size = 32, num_hidden_layers = 1,
                                   num_attention_heads = 2, num_key_value_heads = 1 },
                        tokenizer = tokenizer, seed = 2, out = "student" }
return M
LUA
cat > "$dir/exp.lua" <<'LUA'
local c = dofile(grpo.script_dir .. "/common.lua")
local function eval(model)
  return grpo.eval { model = model, data = c.records, prompt = c.prompt, rules = c.rules, n = 1, temperature = 0, max_new_tokens = 3 }
end
assert(eval(c.teacher)["pass@1"] == 1, "the teacher learned the mapping")
local base = eval(c.student)["pass@1"]

local traces, tm = grpo.distill { teacher = c.teacher, student = c.student, mode = "traces", data = c.records, prompt = c.prompt,
                                  rules = c.rules, keep = { accuracy = 1 }, n = 2, max_new_tokens = 3, steps = 80,
                                  batch_size = 10, lr = 2e-2, out = "traces" }
assert(tm.samples == 80 and tm.kept > 40 and tm.kept <= 80 and tm.steps == 80,
       string.format("traces metrics: %s samples, %s kept, %s steps", tm.samples, tm.kept, tm.steps))
print(string.format("traces: %d of %d teacher samples kept", tm.kept, tm.samples))
local kept_by_function = select(2, grpo.distill { teacher = c.teacher, student = c.student, mode = "traces", data = c.records,
  prompt = c.prompt, rules = c.rules, keep = function(s) return s.question ~= "0" end, steps = 1, out = "traces_fn" })
assert(kept_by_function.kept == 32, "the keep function saw the sample records: " .. kept_by_function.kept)  -- n = 1, 8 of 40 are "0"

local logits, lm = grpo.distill { teacher = c.teacher, student = c.student, mode = "logits", data = c.records, prompt = c.prompt,
                                  max_new_tokens = 3, steps = 80, batch_size = 10, micro_batch_size = 4, lr = 2e-2,
                                  out = "logits" }
assert(lm.kl < 0.2 and lm.argmax_agreement > 0.9, "logit KD reached the teacher: kl " .. lm.kl)
local topk = select(2, grpo.distill { teacher = c.teacher, student = c.student, mode = "logits", data = c.records,
  prompt = c.prompt, data_completion = "{answer}", top_k = 3, distill_temperature = 2.0, steps = 5, out = "logits_topk" })
assert(topk.examples == 40 and topk.steps == 5, "dataset completions: one example per record")

local onp, om = grpo.distill { teacher = c.teacher, student = c.student, mode = "on_policy", data = c.records, prompt = c.prompt,
                               max_new_tokens = 3, steps = 30, prompts_per_step = 10, group_size = 4, lr = 2e-2,
                               out = "on_policy" }
local mixed = select(2, grpo.distill { teacher = c.teacher, student = c.student, mode = "on_policy", data = c.records,
  prompt = c.prompt, rules = c.rules, reward_coef = 1.0, distill_coef = 0.5, max_new_tokens = 3, steps = 2,
  prompts_per_step = 5, group_size = 2, out = "mixed" })
assert(mixed.steps == 2, "mixed on-policy ran")

print(string.format("student pass@1: base %.2f traces %.2f logits %.2f on_policy %.2f", base, eval(traces)["pass@1"],
                    eval(logits)["pass@1"], eval(onp)["pass@1"]))
LUA
"$grpo" run "$dir/exp.lua" --out "$dir/run" > "$dir/out" 2> "$dir/log" || { cat "$dir/log"; fail "run failed"; }
cat "$dir/out"
for mode in traces logits on_policy mixed logits_topk; do
  [ -f "$dir/run/$mode/model.safetensors" ] || fail "$mode: no student checkpoint"
  [ -f "$dir/run/$mode/tokenizer.json" ] || fail "$mode: no tokenizer"
done
[ "$(wc -l < "$dir/run/traces/metrics.jsonl")" -eq 80 ] || fail "traces: expected 80 metric lines"
[ "$(wc -l < "$dir/run/traces/traces.jsonl")" -eq 80 ] || fail "traces: expected 80 teacher samples"
grep -q '"kept":true' "$dir/run/traces/traces.jsonl" || fail "traces.jsonl has no kept flag"
[ "$(wc -l < "$dir/run/logits/metrics.jsonl")" -eq 80 ] || fail "logits: expected 80 metric lines"
for key in distill/kl distill/logprob_gap distill/argmax_agreement loss learning_rate tokens; do
  grep -q "\"$key\"" "$dir/run/logits/metrics.jsonl" || fail "logits metrics lack $key"
done
[ "$(wc -l < "$dir/run/on_policy/metrics.jsonl")" -eq 30 ] || fail "on_policy: expected 30 metric lines"
grep -q '"distill/reverse_kl"' "$dir/run/on_policy/metrics.jsonl" || fail "on_policy metrics lack distill/reverse_kl"
grep -q '"rewards/accuracy"' "$dir/run/mixed/metrics.jsonl" || fail "mixed on_policy metrics lack the rules' reward"
# The on-policy student's reverse KL to the teacher fell.
python3 - "$dir/run/on_policy/metrics.jsonl" <<'PY' || fail "on_policy reverse KL did not fall"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
first = sum(r["distill/reverse_kl"] for r in rows[:3]) / 3
last = sum(r["distill/reverse_kl"] for r in rows[-3:]) / 3
print(f"on_policy reverse KL: first {first:.3f} last {last:.3f}")
sys.exit(0 if last < 0.5 * first else 1)
PY

# grpo report draws the distillation curves.
"$grpo" report "$dir/run" > /dev/null 2>&1 || fail "grpo report failed"
for chart in logits_distill_kl logits_distill_logprob_gap logits_distill_argmax_agreement on_policy_distill_reverse_kl; do
  ls "$dir/run/report" | grep -q "^$chart" || { ls "$dir/run/report"; fail "the report has no $chart chart"; }
done

# A rerun returns the recorded results without training again.
"$grpo" run "$dir/exp.lua" --out "$dir/run" > "$dir/out2" 2> "$dir/log2" || { cat "$dir/log2"; fail "rerun failed"; }
grep -q "finished in an earlier run" "$dir/log2" || fail "the rerun did not reuse the stage records"
! grep -q "distill: logits" "$dir/log2" || fail "the rerun trained again"

# Bad inputs: a different tokenizer, a missing teacher, a different vocabulary size.
cat > "$dir/bad_tokenizer.lua" <<'LUA'
local c = dofile(grpo.script_dir .. "/common.lua")
local other = grpo.init { config = { model_type = "qwen2", hidden_size = 16, intermediate_size = 32, num_hidden_layers = 1,
                                     num_attention_heads = 2, num_key_value_heads = 1 },
                          tokenizer = { chars = "abcdeq01234:xyz" }, seed = 2, out = "other" }
grpo.distill { teacher = c.teacher, student = other, data = c.records, prompt = c.prompt, steps = 1 }
LUA
! "$grpo" run "$dir/bad_tokenizer.lua" --out "$dir/run_tok" > /dev/null 2> "$dir/err" || fail "a tokenizer mismatch was accepted"
grep -q "have different tokenizers" "$dir/err" || { cat "$dir/err"; fail "tokenizer mismatch message"; }
grep -q "run_tok/teacher" "$dir/err" && grep -q "run_tok/other" "$dir/err" || { cat "$dir/err"; fail "the message does not name both directories"; }

cat > "$dir/missing_teacher.lua" <<'LUA'
local c = dofile(grpo.script_dir .. "/common.lua")
grpo.distill { teacher = "no_such_teacher", student = c.student, data = c.records, prompt = c.prompt, steps = 1 }
LUA
! "$grpo" run "$dir/missing_teacher.lua" --out "$dir/run_missing" > /dev/null 2> "$dir/err" || fail "a missing teacher was accepted"
grep -q 'grpo.distill: option "teacher": no file or directory "no_such_teacher"' "$dir/err" || { cat "$dir/err"; fail "missing teacher message"; }

cat > "$dir/bad_vocab.lua" <<'LUA'
local c = dofile(grpo.script_dir .. "/common.lua")
local wide = grpo.init { config = { model_type = "qwen2", hidden_size = 16, intermediate_size = 32, num_hidden_layers = 1,
                                    num_attention_heads = 2, num_key_value_heads = 1, vocab_size = 64 },
                         tokenizer = { chars = "abcdeq01234:" }, seed = 2, out = "wide" }
grpo.distill { teacher = c.teacher, student = wide, data = c.records, prompt = c.prompt, steps = 1 }
LUA
! "$grpo" run "$dir/bad_vocab.lua" --out "$dir/run_vocab" > /dev/null 2> "$dir/err" || fail "different vocabulary sizes were accepted"
grep -q "vocab_size .* and the student .* 64; distillation needs one vocabulary" "$dir/err" || { cat "$dir/err"; fail "vocab size message"; }
echo "ok"
