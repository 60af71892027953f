#!/usr/bin/env bash
# The check of the whole script before it runs (docs/experiments.md, "Checking a script"): a mistake in a
# late stage is reported before the first stage trains; --check says what it checked and writes nothing;
# stand-ins let a script use its stages' results; --no-check skips it.
set -euo pipefail
grpo=$1
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
cd "$dir"

echo 'return { { name = "accuracy", rule = function(s) return s.completion:sub(1, 1) == "a" and 1 or 0 end } }' > rules.lua
printf '{"question": "1"}\n{"question": "2"}\n' > data.jsonl
# $1: the last stage's extra options; $2: its prompt template.
write_script() {
  cat > exp.lua <<LUA
local m = grpo.init { config = { model_type = "qwen2", hidden_size = 16, intermediate_size = 32, num_hidden_layers = 1,
                                 num_attention_heads = 2, num_key_value_heads = 1 },
                      tokenizer = { chars = "abq12:" }, out = "init" }
m = grpo.pretrain { model = m, data = { { text = "q1:a" }, { text = "q2:b" } }, steps = 2, batch_size = 2, seq_len = 4 }
local written = grpo.write_jsonl("cold.jsonl", { { question = "1", answer = "a" }, { question = "2", answer = "b" } })
m = grpo.sft { model = m, data = written, prompt = "q{question}:", completion = "{answer}", epochs = 1, batch_size = 2 }
local rl = grpo.train { model = m, data = "data.jsonl", prompt = "q{question}:", rules = "rules.lua", steps = 2,
                        prompts_per_step = 2, group_size = 2, max_new_tokens = 2, out = "rl" }
local logged = grpo.read_jsonl(rl .. "/metrics.jsonl")
local r = grpo.eval { model = rl, data = "data.jsonl", prompt = "$2", rules = "rules.lua", n = 2, max_new_tokens = 2 $1 }
print(("pass@1 %.3f over %d logged steps"):format(r["pass@1"], #logged))
LUA
}

# --check: one line per stage call, then the verdict; nothing written, the script's print silenced.
write_script "" "q{question}:"
"$grpo" run exp.lua --check --out run 2> err > out || { cat err; fail "--check of a good script failed"; }
[ "$(grep -c '^\[check\] grpo\.' err)" -eq 5 ] || fail "expected 5 [check] lines: $(cat err)"
grep -q '^\[check\] grpo.sft (exp.lua:6): options, 2 records, prompts rendered and encoded$' err || fail "sft line: $(cat err)"
grep -q '^\[check\] grpo.train (exp.lua:7): options, 2 records, prompts rendered and encoded, rules accuracy tried on record 1 with an empty completion$' err || fail "train line: $(cat err)"
grep -q 'check passed: 5 stage calls checked; nothing was trained or written' err || fail "no verdict: $(cat err)"
grep -q 'pass@1 0.000 over 0 logged steps' out || fail "the stand-ins should let the script print: $(cat out)"
[ ! -e run ] || fail "--check wrote $(find run)"

# A stop string the tokenizer cannot write (a character outside its vocabulary) is a warning.
write_script ', stop = "a:z"' "q{question}:"
"$grpo" run exp.lua --check --out run 2> err > out || { cat err; fail "--check with an unwritable stop string failed"; }
grep -q 'warning: grpo.eval: the tokenizer cannot write the stop string "a:z" back ("z" is not in its vocabulary)' err ||
  fail "unwritable stop string: $(cat err)"

# A character of several bytes is named whole.
write_script ', stop = "aλ"' "q{question}:"
"$grpo" run exp.lua --check --out run 2> err > out || { cat err; fail "--check with a Greek stop string failed"; }
grep -q 'the stop string "aλ" back ("λ" is not in its vocabulary)' err || fail "multi-byte character: $(cat err)"

# A typo in the last stage's options: the run stops before the first stage.
write_script ", temprature = 0.5" "q{question}:"
if "$grpo" run exp.lua --out run 2> err; then fail "a typo in the last stage was accepted"; fi
grep -q 'exp.lua:10: grpo.eval: unknown option "temprature" (did you mean "temperature"?)' err || fail "typo: $(cat err)"
grep -q 'found by the check of the whole script before running it: nothing ran' err || fail "the error should say nothing ran: $(cat err)"
[ ! -e run ] || fail "the failed check left $(find run)"

# A prompt template naming a field the records lack: the record and field are named.
write_script "" "q{qestion}:"
if "$grpo" run exp.lua --out run 2> err; then fail "a bad template was accepted"; fi
grep -q 'grpo.eval.*no field "qestion"' err || fail "template: $(cat err)"

# The rules: a syntax error, then a rule that fails on the first record.
write_script "" "q{question}:"
[ -e run ] && fail "an earlier failed check left a run directory"
echo 'return { { name = "accuracy", rule = function(s) return 1 end }' > rules.lua
if "$grpo" run exp.lua --out run 2> err; then fail "a rules file with a syntax error was accepted"; fi
grep -q "exp.lua:7: .*rules.lua" err || fail "syntax: the error should name the stage's line and the file: $(cat err)"
echo 'return { { name = "accuracy", rule = function(s) return verify.extract_tagg(s.completion, "a") and 1 or 0 end } }' > rules.lua
if "$grpo" run exp.lua --out run 2> err; then fail "a rule failing on the first record was accepted"; fi
grep -q 'rule "accuracy": .*extract_tagg' err || fail "trial call: $(cat err)"
[ ! -e run ] || fail "the failed check left $(find run)"

# --no-check runs anyway (the rule's failures are then counted in training, as without a check).
"$grpo" run exp.lua --out run --no-check 2> err > out || { cat err; fail "--no-check run failed"; }
grep -q 'pass@1 0.000 over 2 logged steps' out || fail "the run should print real results: $(cat out)"
grep -q '^\[check\]' err && fail "--no-check should not check"

echo 'return { { name = "accuracy", rule = function(s) return s.completion:sub(1, 1) == "a" and 1 or 0 end } }' > rules.lua
# A misspelt stage is a grpo error: the check stops the run before anything ran.
sed 's/grpo.eval {/grpo.evaluate {/' exp.lua > typo.lua
if "$grpo" run typo.lua --out typo_run 2> err; then fail "a misspelt stage was accepted"; fi
grep -q 'typo.lua:10: grpo.evaluate: no such function (did you mean grpo.eval?)' err || fail "misspelt stage: $(cat err)"
[ ! -e typo_run ] || fail "the failed check left $(find typo_run)"

# The script's own code failing on a stand-in (an assert on a result) ends the check with a warning only.
sed 's/^print(/assert(#logged == 2, "two steps logged") print(/' exp.lua > asserting.lua
"$grpo" run asserting.lua --check --out run3 2> err || { cat err; fail "--check of a script asserting on a result failed"; }
grep -q 'warning: the check of the script stopped at an error of its own code, after 5 stage calls checked.*two steps logged' err ||
  fail "stand-in warning: $(cat err)"
"$grpo" run asserting.lua --out run3 2> err > out || { cat err; fail "a script asserting on a result did not run"; }
grep -q 'pass@1 0.000 over 2 logged steps' out || fail "the asserting script should run: $(cat out)"

# A good script runs after its quiet check, printing once.
echo 'return { { name = "accuracy", rule = function(s) return s.completion:sub(1, 1) == "a" and 1 or 0 end } }' > rules.lua
"$grpo" run exp.lua --out run2 2> err > out || { cat err; fail "the checked run failed"; }
[ "$(grep -c 'pass@1' out)" -eq 1 ] || fail "the script's print should show once: $(cat out)"
grep -q '^\[check\]' err && fail "the check before a run should be quiet"
[ -f run2/cold.jsonl ] || fail "write_jsonl should write in the real run"
echo ok
