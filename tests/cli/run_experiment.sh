#!/usr/bin/env bash
# grpo run end to end: every stage of a tiny experiment, the run directory it leaves, option errors.
set -euo pipefail
grpo=$1
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

cat > "$dir/rules.lua" <<'LUA'
return { { name = "accuracy", rule = function(s) return s.completion:sub(1, 1) == s.answer and 1 or 0 end } }
LUA
cat > "$dir/exp.lua" <<'LUA'
local data = {}
for i = 1, 20 do data[#data + 1] = { question = tostring(i % 3), answer = "a" } end
local corpus = {}
for i = 1, 200 do corpus[#corpus + 1] = { text = "q" .. (i % 3) .. ":" .. (i % 2 == 0 and "a" or "b") } end
local m = grpo.init { config = { model_type = "qwen2", hidden_size = 32, intermediate_size = 64, num_hidden_layers = 2,
                                 num_attention_heads = 4, num_key_value_heads = 2 },
                      tokenizer = { chars = "abq012:" }, out = "init" }
m = grpo.pretrain { model = m, data = corpus, steps = 5, batch_size = 4, seq_len = 16 }
local t = grpo.train { model = m, data = data, prompt = "q{question}:", rules = grpo.script_dir .. "/rules.lua",
                       steps = 2, prompts_per_step = 2, group_size = 4, max_new_tokens = 3, lr = 1e-3 }
local e = grpo.eval { model = t, data = data, prompt = "q{question}:", rules = grpo.script_dir .. "/rules.lua", n = 4,
                      max_new_tokens = 3 }
assert(e["pass@1"] >= 0 and e["pass@1"] <= 1 and e["pass@4"] >= e["pass@1"], "pass@k out of range")
grpo.write_jsonl("result.jsonl", { e })
LUA
"$grpo" run "$dir/exp.lua" --out "$dir/run" --set train.steps=3 2> "$dir/log" || { cat "$dir/log"; fail "run failed"; }
for f in init/config.json init/tokenizer.json pretrain/model.safetensors train/model.safetensors train/metrics.jsonl \
         train/samples.jsonl result.jsonl; do
  [ -f "$dir/run/$f" ] || fail "missing $f in the run directory"
done
# --set train.steps=3 overrides the script's 2.
[ "$(wc -l < "$dir/run/train/metrics.jsonl")" -eq 3 ] || fail "expected 3 metric lines, got $(wc -l < "$dir/run/train/metrics.jsonl")"
grep -q '"reward"' "$dir/run/train/metrics.jsonl" || fail "no reward metric"
grep -q '"pass@1"' "$dir/run/result.jsonl" || fail "no pass@1 in the eval result"
# Steps count from 1 in every log, as on the progress line.
head -1 "$dir/run/train/metrics.jsonl" | grep -q '"step":1[,}]' || fail "train metrics do not start at step 1"
# Pretraining logs its loss too, and every training stage has a TensorBoard event file beside its metrics.
[ "$(wc -l < "$dir/run/pretrain/metrics.jsonl")" -eq 5 ] || fail "expected 5 pretraining metric lines"
for stage in pretrain train; do
  ls "$dir/run/$stage"/events.out.tfevents.*.grpo > /dev/null 2>&1 || fail "no TensorBoard event file in $stage/"
done
# The training samples log is a rescorable samples file: the same rules give the rewards it recorded.
"$grpo" rewards --rules "$dir/rules.lua" --in "$dir/run/train/samples.jsonl" --out "$dir/rescored.jsonl" > "$dir/rescore" 2>&1 ||
  { cat "$dir/rescore"; fail "grpo rewards cannot rescore train/samples.jsonl"; }
paste -d' ' <(grep -o '"reward":[-0-9.e]*' "$dir/run/train/samples.jsonl") <(grep -o '"reward":[-0-9.e]*' "$dir/rescored.jsonl") |
  awk '{ if ($1 != $2) bad = 1; n++ } END { exit (bad || n == 0) }' || fail "rescored rewards differ from the logged ones"
grep -q '"question"' "$dir/run/train/samples.jsonl" || fail "train samples lack the record's fields"

# The same run with bf16 weights (float32 masters, router logits, log-probs and loss): every stage runs.
"$grpo" run "$dir/exp.lua" --out "$dir/bf16" --dtype bfloat16 2> "$dir/log" || { cat "$dir/log"; fail "bf16 run failed"; }
[ "$(wc -l < "$dir/bf16/train/metrics.jsonl")" -eq 2 ] || fail "bf16 run: expected 2 metric lines"
grep -q '"pass@1"' "$dir/bf16/result.jsonl" || fail "bf16 run: no pass@1 in the eval result"
if "$grpo" run "$dir/exp.lua" --out "$dir/fp16" --dtype float16 2> "$dir/err"; then fail "float16 accepted"; fi
grep -q 'float16 training needs loss scaling' "$dir/err" || fail "unclear float16 error: $(cat "$dir/err")"

# An unknown option names itself and the closest known one, with the script's line.
cat > "$dir/bad.lua" <<'LUA'
grpo.init { config = {}, tokenizer = { chars = "ab" }, sed = 1 }
LUA
if "$grpo" run "$dir/bad.lua" --out "$dir/bad" 2> "$dir/err"; then fail "unknown option accepted"; fi
grep -q 'unknown option "sed" (did you mean "seed"?)' "$dir/err" || fail "unclear error: $(cat "$dir/err")"
grep -q 'bad.lua:1' "$dir/err" || fail "error does not name the script line: $(cat "$dir/err")"

# A record without a prompt, and no prompt option: the error names the record and the field.
cat > "$dir/no_prompt.lua" <<LUA
grpo.eval { model = "$dir/run/init", data = { { prompt = "q1:" }, { question = "2" } }, rules = "$dir/rules.lua", n = 1 }
LUA
if "$grpo" run "$dir/no_prompt.lua" --out "$dir/no_prompt" 2> "$dir/err"; then fail "a record without a prompt accepted"; fi
grep -q 'grpo.eval: record 2 has no string "prompt" field (or give a prompt template or function)' "$dir/err" ||
  fail "unclear error: $(cat "$dir/err")"
echo ok
