#!/usr/bin/env bash
# grpo.rejection_sample -> grpo.sft, and grpo.mix, end to end on a tiny model: a model tuned on a
# mapping is sampled, the correct samples kept (one per distinct completion and prompt) and fine-tuned
# on; the kept file, the per-prompt report and the counts agree; a keep that keeps nothing and a keep
# naming a rule the samples lack are errors naming the stage and the rule; a rerun reuses the stage;
# grpo.mix gives exact proportions, a source field and the same order for the same seed.
# The script prints what it found and this file checks it (a checking pass runs the script first).
set -euo pipefail
grpo=$1
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

cat > "$dir/rules.lua" <<'LUA'
return { { name = "accuracy", rule = function(s) return s.completion == s.answer and 1 or 0 end },
         { name = "short", weight = 0, rule = function(s) return #s.completion <= 1 and 1 or 0 end } }
LUA
cat > "$dir/exp.lua" <<'LUA'
local letters = { "a", "b", "c", "d", "e" }
local records = {}
for i = 1, 20 do
  local d = (i - 1) % 5
  records[#records + 1] = { question = tostring(d), answer = letters[d + 1] }
end
local rules = grpo.script_dir .. "/rules.lua"
local m = grpo.init { config = { model_type = "qwen2", hidden_size = 32, intermediate_size = 64, num_hidden_layers = 2,
                                 num_attention_heads = 4, num_key_value_heads = 2 },
                      tokenizer = { chars = "abcdeq01234:" }, seed = 1 }
local tuned = grpo.sft { model = m, data = records, prompt = "q{question}:", completion = "{answer}", steps = 40,
                         batch_size = 10, lr = 2e-2, warmup = 5, max_len = 16 }

-- Correct and short, at most 2 per prompt, each distinct completion once.
local kept, stats = grpo.rejection_sample { model = tuned, data = records, prompt = "q{question}:", rules = rules, n = 6,
                                            temperature = 1.0, max_new_tokens = 3, keep = { accuracy = 1, short = 1 },
                                            max_per_prompt = 2 }
print("stats", stats.seen, stats.kept, stats.prompts, stats.prompts_with_kept, stats.passed, stats.duplicates,
      stats.kept_per_prompt)
local kept_records = grpo.read_jsonl(kept)
local all_correct = true
for _, r in ipairs(kept_records) do all_correct = all_correct and r.completion == r.answer end
print("kept_records", #kept_records, all_correct)

-- The kept file mixes like any JSONL path (in the check before the run it is not written yet).
local with_kept = grpo.mix { { data = kept, weight = 1, name = "kept" }, { data = records, weight = 1 }, n = 4, seed = 2 }
local from_kept = 0
for _, r in ipairs(with_kept) do if r.source == "kept" then from_kept = from_kept + 1 end end
print("mix_kept", #with_kept, from_kept)

-- The kept records are SFT data as they are.
local _, sm = grpo.sft { model = m, data = kept, completion = "{completion}", steps = 2, batch_size = 4, out = "rs_sft" }
print("rs_sft_steps", sm.steps)

-- A function keep; no dedupe: every correct sample.
local _, fstats = grpo.rejection_sample { model = tuned, data = records, prompt = "q{question}:", rules = rules, n = 6,
                                          temperature = 1.0, max_new_tokens = 3, dedupe = false,
                                          keep = function(s) return s.rewards.accuracy == 1 end, out = "rs_function" }
print("function_stats", fstats.kept, fstats.passed)

local ok, err = pcall(grpo.rejection_sample, { model = tuned, data = records, prompt = "q{question}:", n = 2,
                                                max_new_tokens = 2, keep = function() return false end, out = "rs_none" })
print("empty_error", ok, err)
ok, err = pcall(grpo.rejection_sample, { model = tuned, data = records, prompt = "q{question}:", rules = rules, n = 2,
                                          max_new_tokens = 2, keep = { acuracy = 1 }, out = "rs_typo" })
print("typo_error", ok, err)

-- grpo.mix: 30 of 70% A and 30% B, B shorter than its share (3 records for 9 draws).
local A, B = {}, {}
for i = 1, 40 do A[#A + 1] = { text = "a" .. i } end
for i = 1, 3 do B[#B + 1] = { text = "b" .. i } end
local mixed, mstats = grpo.mix { { data = A, weight = 0.7, name = "long" }, { data = B, weight = 0.3 }, n = 30, seed = 4 }
local again = grpo.mix { { data = A, weight = 0.7, name = "long" }, { data = B, weight = 0.3 }, n = 30, seed = 4 }
local from_a, same = 0, true
for i, r in ipairs(mixed) do
  if r.source == "long" then from_a = from_a + 1 end
  same = same and again[i].text == r.text and again[i].source == r.source
end
print("mix", #mixed, from_a, mixed[1].source ~= nil, same, mstats.sources[2].name, mstats.sources[2].drawn,
      mstats.sources[2].passes)
local default_mix = grpo.mix { { data = A, weight = 1 }, { data = B, weight = 1 } }
print("mix_default", #default_mix)
ok, err = pcall(grpo.mix, { { data = A, wieght = 1 } })
print("mix_error", ok, err)
LUA
"$grpo" run "$dir/exp.lua" --out "$dir/run" > "$dir/out" 2> "$dir/log" || { cat "$dir/log"; fail "run failed"; }
line() { grep "^$1	" "$dir/out" || fail "no $1 line: $(cat "$dir/out")"; }

# 20 prompts x 6 samples; kept at most 2 per prompt, all correct.
read -r _ seen kept prompts with_kept passed duplicates per_prompt <<< "$(line stats)"
[ "$seen" = 120 ] || fail "seen $seen, expected 120"
[ "$prompts" = 20 ] || fail "prompts $prompts"
[ "$kept" -ge 1 ] && [ "$kept" -le 40 ] || fail "kept $kept not in 1..40"
[ "$with_kept" -ge 1 ] && [ "$with_kept" -le 20 ] || fail "prompts with kept $with_kept"
[ "$passed" -ge "$kept" ] || fail "passed $passed < kept $kept"
awk -v k="$kept" -v p="$per_prompt" 'BEGIN { exit !(p > k / 20 - 1e-9 && p < k / 20 + 1e-9) }' || fail "kept_per_prompt $per_prompt"
read -r _ n_records all_correct <<< "$(line kept_records)"
[ "$n_records" = "$kept" ] || fail "kept.jsonl has $n_records records, stats say $kept"
[ "$all_correct" = true ] || fail "a kept record is wrong"
[ "$(wc -l < "$dir/run/rejection_sample/kept.jsonl")" = "$kept" ] || fail "kept.jsonl line count"
[ "$(wc -l < "$dir/run/rejection_sample/samples.jsonl")" = 120 ] || fail "samples.jsonl should hold every sample"
[ "$(wc -l < "$dir/run/rejection_sample/report.jsonl")" = 20 ] || fail "report.jsonl: one line per prompt"
# The report's per-prompt counts add up to the totals, and no prompt keeps more than 2.
python3 - "$dir/run/rejection_sample/report.jsonl" "$kept" "$duplicates" <<'PY' || fail "report does not add up"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
assert sum(r["seen"] for r in rows) == 120
assert sum(r["kept"] for r in rows) == int(sys.argv[2])
assert sum(r["duplicates"] for r in rows) == int(sys.argv[3])
assert all(r["kept"] <= 2 and r["kept"] + r["duplicates"] + r["capped"] == r["passed"] for r in rows)
PY
# Dedupe: no prompt has the same completion kept twice.
python3 - "$dir/run/rejection_sample/kept.jsonl" <<'PY' || fail "a completion was kept twice for one prompt"
import json, sys
seen = set()
for l in open(sys.argv[1]):
    r = json.loads(l)
    key = (r["prompt_index"], r["completion"])
    assert key not in seen
    seen.add(key)
PY
[ "$(line mix_kept | cut -f2-)" = "$(printf '4\t2')" ] || fail "mix of the kept file: $(line mix_kept)"
read -r _ rs_steps <<< "$(line rs_sft_steps)"
[ "$rs_steps" = 2 ] || fail "SFT on the kept records did not run"
read -r _ f_kept f_passed <<< "$(line function_stats)"
[ "$f_kept" = "$f_passed" ] || fail "without dedupe or cap every passing sample is kept ($f_kept of $f_passed)"
grep -q "^empty_error	false	.*grpo.rejection_sample: no sample was kept: 40 samples of 20 prompts seen, 0 passed.*rs_none" "$dir/out" \
  || fail "unclear empty-result error: $(grep empty_error "$dir/out")"
grep -q '^typo_error	false	.*grpo.rejection_sample: .*keep names rule "acuracy".*"accuracy", "short"' "$dir/out" \
  || fail "unclear missing-rule error: $(grep typo_error "$dir/out")"
grep -q 'kept .* of 120 samples' "$dir/log" || fail "no summary line on stderr"

# grpo.mix: 21 from A, 9 from B (B's 3 records in 3 passes), the same order again, and the default
# size: 7 (3.5 and 3.5 -> 4 and 3, the tie to the first; 8 would take 4 of B's 3).
[ "$(line mix | cut -f2-)" = "$(printf '30\t21\ttrue\ttrue\t2\t9\t3')" ] || fail "mix: $(line mix)"
grep -q 'grpo.mix: warning: dataset 2 has 3 records for a share of 9' "$dir/log" || fail "no repetition warning"
[ "$(line mix_default | cut -f2)" = 7 ] || fail "default mix size: $(line mix_default)"
grep -q '^mix_error	false	.*grpo.mix: entry 1 has unknown key "wieght"' "$dir/out" || fail "mix error: $(grep mix_error "$dir/out")"

# A rerun reuses the finished rejection sampling.
"$grpo" run "$dir/exp.lua" --out "$dir/run" > "$dir/out2" 2> "$dir/log2" || { cat "$dir/log2"; fail "rerun failed"; }
grep -q '\[rejection_sample\] finished in an earlier run' "$dir/log2" || fail "rejection sampling ran again"
[ "$(grep '^stats' "$dir/out2")" = "$(grep '^stats' "$dir/out")" ] || fail "the rerun returned other counts"
echo ok
