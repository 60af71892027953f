#!/usr/bin/env bash
# grpo run with the data stages: split/shuffle, SFT that learns a mapping, sampling scored by rules,
# rejection-sampled SFT, a rerun that skips finished stages, a report of the run, and option errors.
set -euo pipefail
grpo=$1
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

cat > "$dir/rules.lua" <<'LUA'
return { { name = "accuracy", rule = function(s) return s.completion == s.answer and 1 or 0 end } }
LUA
cat > "$dir/exp.lua" <<'LUA'
-- The mapping to learn: "q<d>:" -> the letter for d, then EOS.
local letters = { "a", "b", "c", "d", "e" }
local records = {}
for i = 1, 40 do
  local d = (i - 1) % 5
  records[#records + 1] = { question = tostring(d), answer = letters[d + 1] }
end
local train, test = grpo.split(records, { test = 10, seed = 3 })
assert(#train == 30 and #test == 10, "split sizes")
local again = grpo.split(records, { test = 10, seed = 3 })
assert(again[1].question == train[1].question and again[30].question == train[30].question, "split is deterministic")
local shuffled = grpo.shuffle(records, 5)
assert(#shuffled == 40, "shuffle keeps every record")

local m = grpo.init { config = { model_type = "qwen2", hidden_size = 32, intermediate_size = 64, num_hidden_layers = 2,
                                 num_attention_heads = 4, num_key_value_heads = 2 },
                      tokenizer = { chars = "abcdeq01234:" }, seed = 1 }
local tuned, sm = grpo.sft { model = m, data = train, prompt = "q{question}:", completion = "{answer}", steps = 60,
                             batch_size = 10, lr = 2e-2, warmup = 5, max_len = 16 }
assert(sm.loss < 0.1, "SFT did not learn the mapping: loss " .. sm.loss)
assert(sm.steps == 60 and sm.completion_tokens == 60 * 10 * 2, "SFT metrics")

local path, samples, means = grpo.sample { model = tuned, data = test, prompt = "q{question}:", n = 2, temperature = 0,
                                           rules = grpo.script_dir .. "/rules.lua", max_new_tokens = 4 }
assert(#samples == 20, "two samples per test prompt")
assert(means.reward == 1 and means["rewards/accuracy"] == 1, "greedy samples of the tuned model are all correct")
for _, s in ipairs(samples) do
  assert(s.rewards.accuracy == 1 and s.finish_reason == "stop" and s.question ~= nil, "sample record fields")
end

-- Rejection sampling: the base model's samples, the correct ones kept, fine-tuned on.
local _, base_samples = grpo.sample { model = m, data = train, prompt = "q{question}:", n = 4, max_new_tokens = 2,
                                      rules = grpo.script_dir .. "/rules.lua", out = "base_samples.jsonl" }
local keep = {}
for _, s in ipairs(base_samples) do if s.rewards.accuracy == 1 then keep[#keep + 1] = s end end
if #keep > 0 then grpo.sft { model = m, data = keep, steps = 2, batch_size = 4, out = "rejection_sft" } end

local e = grpo.eval { model = tuned, data = test, prompt = "q{question}:", rules = grpo.script_dir .. "/rules.lua", n = 2,
                      temperature = 0, top_p = 0.9, max_new_tokens = 4 }
assert(e["pass@1"] == 1, "eval agrees with sample")
print("sft loss", sm.loss)
LUA
"$grpo" run "$dir/exp.lua" --out "$dir/run" > "$dir/out" 2> "$dir/log" || { cat "$dir/log"; fail "run failed"; }
[ "$(wc -l < "$dir/run/sft/metrics.jsonl")" -eq 60 ] || fail "expected 60 SFT metric lines"
[ -f "$dir/run/sft/model.safetensors" ] || fail "no SFT checkpoint"
[ "$(wc -l < "$dir/run/samples.jsonl")" -eq 20 ] || fail "expected 20 samples"
grep -q '"rewards":{"accuracy":1.0}' "$dir/run/samples.jsonl" || fail "samples are not scored"
[ -f "$dir/run/base_samples.jsonl" ] || fail "no base samples"
# Progress into a file: one line per 5% of the steps, then the summary table.
grep -q '^\[sft\] 60/60  loss' "$dir/log" || fail "no final SFT progress line: $(cat "$dir/log")"
grep -q '^\[sft\] done: 60 of 60 steps' "$dir/log" || fail "no SFT summary"
grep -Eq '^  loss +[0-9.]+ +[0-9.e-]+ ' "$dir/log" || fail "no summary row for the loss"
if grep -q $'\r' "$dir/log"; then fail "carriage returns in a log file"; fi

# A rerun into the same directory finds the finished stages.
"$grpo" run "$dir/exp.lua" --out "$dir/run" > /dev/null 2> "$dir/log2" || { cat "$dir/log2"; fail "rerun failed"; }
grep -q '\[sft\] finished in an earlier run' "$dir/log2" || fail "SFT ran again: $(cat "$dir/log2")"
grep -q '\[sample\] finished in an earlier run' "$dir/log2" || fail "sampling ran again"

"$grpo" report "$dir/run" > /dev/null || fail "report failed"
[ -f "$dir/run/report/sft_loss.svg" ] || fail "no SFT loss chart"

# Errors name the option.
echo 'grpo.split({1, 2, 3}, { tests = 1 })' > "$dir/bad_split.lua"
if "$grpo" run "$dir/bad_split.lua" --out "$dir/bad1" 2> "$dir/err"; then fail "unknown split option accepted"; fi
grep -q 'grpo.split: unknown option "tests"' "$dir/err" || fail "unclear error: $(cat "$dir/err")"
echo 'grpo.sft { model = "x", data = {}, pakc = true }' > "$dir/bad_sft.lua"
if "$grpo" run "$dir/bad_sft.lua" --out "$dir/bad2" 2> "$dir/err"; then fail "unknown sft option accepted"; fi
grep -q 'unknown option "pakc" (did you mean "pack"?)' "$dir/err" || fail "unclear error: $(cat "$dir/err")"
echo 'grpo.sft { model = "x", data = {{prompt = "a"}}, completion = 3 }' > "$dir/bad_completion.lua"
if "$grpo" run "$dir/bad_completion.lua" --out "$dir/bad3" 2> "$dir/err"; then fail "a numeric completion accepted"; fi
grep -q 'option "completion" must be a template or a function' "$dir/err" || fail "unclear error: $(cat "$dir/err")"
echo ok
