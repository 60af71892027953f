#!/usr/bin/env bash
# An edited input file is a changed option: a rerun into the same run directory after the rules file
# changed is refused, naming the file's content; unchanged inputs reuse every stage; --rerun-from runs a
# stage and the later ones again (their records and checkpoints set aside) while the earlier ones are reused.
set -euo pipefail
grpo=$1
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

echo 'return { { name = "accuracy", rule = function(s) return s.completion:sub(1, 1) == "a" and 1 or 0 end } }' > "$dir/rules.lua"
printf '{"question": "1"}\n{"question": "2"}\n' > "$dir/data.jsonl"
cat > "$dir/exp.lua" <<LUA
local m = grpo.init { config = { model_type = "qwen2", hidden_size = 16, intermediate_size = 32, num_hidden_layers = 1,
                                 num_attention_heads = 2, num_key_value_heads = 1 },
                      tokenizer = { chars = "abq12:" }, out = "init" }
grpo.train { model = m, data = "$dir/data.jsonl", prompt = "q{question}:", rules = "$dir/rules.lua", steps = 2,
             prompts_per_step = 2, group_size = 2, max_new_tokens = 2, checkpoint_every = 1 }
LUA
"$grpo" run "$dir/exp.lua" --out "$dir/run" 2> "$dir/log" || { cat "$dir/log"; fail "first run failed"; }
"$grpo" run "$dir/exp.lua" --out "$dir/run" 2> "$dir/log" || { cat "$dir/log"; fail "unchanged rerun failed"; }
[ "$(grep -c 'finished in an earlier run' "$dir/log")" -eq 2 ] || fail "unchanged inputs: both stages should be reused"

# The rules file changes (a new weight): the finished train stage no longer matches its inputs.
echo 'return { { name = "accuracy", weight = 2, rule = function(s) return s.completion:sub(1, 1) == "a" and 1 or 0 end } }' > "$dir/rules.lua"
if "$grpo" run "$dir/exp.lua" --out "$dir/run" 2> "$dir/err"; then fail "a rerun with an edited rules file was accepted"; fi
grep -q 'content of rules: "fnv1a64:[0-9a-f]*" -> "fnv1a64:[0-9a-f]*"' "$dir/err" || fail "the error does not name the rules' content: $(cat "$dir/err")"
grep -q 'stages/01-train.json' "$dir/err" || fail "the error does not name the stage record: $(cat "$dir/err")"
# The data file too.
printf '{"question": "2"}\n{"question": "1"}\n' > "$dir/data.jsonl"
if "$grpo" run "$dir/exp.lua" --out "$dir/run" 2> "$dir/err"; then fail "a rerun with an edited data file was accepted"; fi
grep -q 'content of data:' "$dir/err" || fail "the error does not name the data's content: $(cat "$dir/err")"

# Run train again, keep init: --rerun-from sets its record and checkpoints aside, as docs/experiments.md says.
if "$grpo" run "$dir/exp.lua" --out "$dir/run" --rerun-from sft 2> "$dir/err"; then fail "--rerun-from a stage that is not there was accepted"; fi
grep -q 'rerun-from sft: no such stage record.*00-init.json, 01-train.json' "$dir/err" || fail "the error does not list the records: $(cat "$dir/err")"
"$grpo" run "$dir/exp.lua" --out "$dir/run" --rerun-from train 2> "$dir/log" || { cat "$dir/log"; fail "the rerun from train failed"; }
grep -q '\[init\] finished in an earlier run' "$dir/log" || fail "init should be reused"
grep -q '\[train\] finished in an earlier run' "$dir/log" && fail "train should have run again"
[ "$(wc -l < "$dir/run/train/metrics.jsonl")" -eq 2 ] || fail "the rerun train should log 2 steps"
aside=$(ls -d "$dir"/run/stages/replaced-*)
[ -f "$aside/01-train.json" ] || fail "the old train record was not set aside in $aside"
[ -d "$aside/01-train-checkpoints" ] || fail "the old train checkpoints were not set aside in $aside"
grep -q '"complete": *true' "$dir/run/stages/01-train.json" || fail "the new train record is not complete"
# The record number works as well, and a second rerun-from keeps the first one's set-aside folder.
sleep 1
"$grpo" run "$dir/exp.lua" --out "$dir/run" --rerun-from 01 2> "$dir/log" || { cat "$dir/log"; fail "the rerun from 01 failed"; }
[ "$(ls -d "$dir"/run/stages/replaced-* | wc -l)" -eq 2 ] || fail "each rerun-from should set aside into its own folder"
echo ok
