#!/usr/bin/env bash
# The R1 example (examples/r1/r1.lua) end to end with tiny step counts: every stage runs and hands the
# next its output (read back from the stage records), the rejection-sampled file keeps only what it
# should, the RL stages log what `grpo report` draws, and the held-out table is printed with numbers in
# range.
set -euo pipefail
grpo=$1
here=$(cd "$(dirname "$0")" && pwd)
root=$here/../..
dir=$(mktemp -d)
trap '[ -n "$keep" ] && cp "$dir/out" "$dir/log" "$keep"/ 2>/dev/null; rm -rf "$dir"' EXIT
keep=${R1_PIPELINE_KEEP:-}  # a folder to copy the run's output and log to, for a look after a failure
fail() { echo "FAIL: $*" >&2; exit 1; }

run=$dir/run
"$grpo" run "$root/examples/r1/r1.lua" --out "$run" \
  --set pretrain.steps=60 --set train.steps=2 --set train.prompts_per_step=2 --set train.group_size=2 \
  --set sft.steps=20 --set eval.n=2 --set eval.max_new_tokens=48 > "$dir/out" 2> "$dir/log" ||
  { tail -30 "$dir/log"; cat "$dir/out"; fail "r1.lua failed"; }

for f in init/config.json base/model.safetensors r1_zero/model.safetensors r1_zero/metrics.jsonl \
         stage1_cold_start/model.safetensors stage2_reasoning_rl/metrics.jsonl stage3_rejection/kept.jsonl \
         stage3_sft/model.safetensors stage4_all_scenarios_rl/model.safetensors stage4_all_scenarios_rl/metrics.jsonl \
         rules_reasoning.lua rules_all.lua; do
  [ -f "$run/$f" ] || fail "missing $f in the run directory"
done

# Each stage starts from the model the pipeline says: read from the stage records.
python3 - "$run" <<'PY' || fail "stage chain"
import glob, json, os, sys
run = sys.argv[1]
records = [json.load(open(f)) for f in sorted(glob.glob(os.path.join(run, "stages", "*.json")))]
chain = [(r["stage"], os.path.basename(r["options"].get("model", "")), r["options"].get("out")) for r in records
         if r["stage"] != "eval"]
want = [("init", "", "init"), ("pretrain", "init", "base"), ("train", "base", "r1_zero"),
        ("sft", "base", "stage1_cold_start"), ("train", "stage1_cold_start", "stage2_reasoning_rl"),
        ("rejection_sample", "stage2_reasoning_rl", "stage3_rejection"), ("sft", "base", "stage3_sft"),
        ("train", "stage3_sft", "stage4_all_scenarios_rl")]
assert chain == want, f"stages {chain}"
assert all(r.get("complete") for r in records), "an unfinished stage record"
# RL stages: the R1-Zero arm rewards accuracy and format only; stage 2 adds language; stage 4 all rules.
rules = {r["options"]["out"]: os.path.basename(r["options"]["rules"]) for r in records if r["stage"] == "train"}
assert rules == {"r1_zero": "rules.lua", "stage2_reasoning_rl": "rules_reasoning.lua",
                 "stage4_all_scenarios_rl": "rules_all.lua"}, rules
evals = [os.path.basename(r["options"]["model"]) for r in records if r["stage"] == "eval"]
assert evals == [m for m in ["base", "r1_zero", "stage1_cold_start", "stage2_reasoning_rl", "stage3_sft",
                             "stage4_all_scenarios_rl"] for _ in range(2)], evals
PY

# Rejection sampling kept right, well-formed, one-language samples only, at most 2 per prompt, and the
# SFT of stage 3 trained on them.
python3 - "$run" <<'PY' || fail "rejection-sampled data"
import collections, json, sys
run = sys.argv[1]
kept = [json.loads(l) for l in open(f"{run}/stage3_rejection/kept.jsonl")]
assert kept, "nothing kept"
per = collections.Counter(k["prompt_index"] for k in kept)
assert max(per.values()) <= 2, per
for k in kept:
    assert k["rewards"]["accuracy"] == 1 and k["rewards"]["format"] == 1 and k["rewards"]["language"] == 1, k
    assert k["kind"] == "reasoning" and k["completion"].endswith("</a>"), k
    assert f"<a>{k['answer']}</a>" in k["completion"], k
assert len({(k["prompt_index"], k["completion"]) for k in kept}) == len(kept), "duplicates kept"
PY

# The RL stages log completion length and the verification share for `grpo report`.
for stage in r1_zero stage2_reasoning_rl stage4_all_scenarios_rl; do
  [ "$(wc -l < "$run/$stage/metrics.jsonl")" -eq 2 ] || fail "$stage: expected 2 metric lines"
  for key in '"completion_length/mean"' '"rewards/verification"' '"rewards/language"' '"rewards/accuracy"'; do
    grep -q "$key" "$run/$stage/metrics.jsonl" || fail "$stage: no $key in metrics.jsonl"
  done
done
"$grpo" report "$run" --out "$dir/report" > /dev/null 2>&1 || fail "grpo report"
[ -f "$dir/report/report.html" ] || fail "no report.html"

# The table: six rows, rates in [0, 1], pass@8 >= pass@1, lengths positive.
grep -q '^RL budget: R1-Zero 2 steps' "$dir/out" || fail "no budget line: $(cat "$dir/out")"
awk '
  /^model +pass@1/ { table = 1; next }
  table && NF >= 9 && $(NF-7) ~ /^[0-9.]+$/ {
    rows++
    for (i = NF - 7; i <= NF; i++) if (i != NF - 3 && ($i < 0 || $i > 1)) bad = bad " " $0
    if ($(NF-6) < $(NF-7) || $(NF-3) <= 0) bad = bad " " $0
  }
  table && NF == 0 { table = 0 }
  END { if (rows != 6 || bad != "") { print rows " rows;" bad > "/dev/stderr"; exit 1 } }' "$dir/out" ||
  fail "held-out table: $(cat "$dir/out")"
for name in "base" "R1-Zero (GRPO)" "R1 1 cold start" "R1 2 reasoning RL" "R1 3 rejection SFT" "R1 4 all-scenario RL"; do
  grep -q "^$name " "$dir/out" || fail "no table row '$name'"
done
echo "ok"
