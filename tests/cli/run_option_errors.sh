#!/usr/bin/env bash
# grpo run's option errors: every --set is checked against the stages' declarations before the script
# runs (an unknown stage or key names the closest known one; a bad value names the key, the type and
# the allowed values), and a missing input path names the path given and where it was looked for.
set -euo pipefail
grpo=$1
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

# A script that shows whether it ran at all.
echo 'print("the script ran")' > "$dir/exp.lua"

# refused SET... EXPECTED: the run fails with EXPECTED on stderr, before the script prints or a run
# directory appears.
refused() {
  local expected=${*: -1}
  local sets=("${@:1:$#-1}")
  local args=()
  for s in "${sets[@]}"; do args+=(--set "$s"); done
  if "$grpo" run "$dir/exp.lua" --out "$dir/run" "${args[@]}" > "$dir/out" 2> "$dir/err"; then
    fail "--set ${sets[*]} accepted"
  fi
  grep -qF -- "$expected" "$dir/err" || fail "--set ${sets[*]}: expected '$expected', got: $(cat "$dir/err")"
  if grep -q 'the script ran' "$dir/out"; then fail "--set ${sets[*]}: the script ran before the error"; fi
  [ ! -e "$dir/run" ] || fail "--set ${sets[*]}: a run directory was made"
}

refused train.stepz=5 'grpo.train has no option "stepz" (did you mean "steps"?)'
refused trian.steps=5 'there is no stage "trian" (did you mean "train"?)'
refused train.steps=abc 'option "steps" of grpo.train takes an integer, got "abc"'
refused train.lr=1e-3 pretrain.batch_size=3.5 'option "batch_size" of grpo.pretrain takes an integer, got "3.5"'
refused train.advantage_scaling=grup 'takes one of "group", "batch", "none", got "grup"'
refused train.loss_aggregation=token_mean \
  'one of "token-mean", "seq-mean-token-mean", "seq-mean-token-sum", "seq-mean-token-sum-norm"'
refused sft.pack=yes 'option "pack" of grpo.sft takes true or false, got "yes"'
# With --nproc the check comes before any rank starts: one error, not one per rank.
if "$grpo" run "$dir/exp.lua" --out "$dir/run" --nproc 2 --set train.stepz=5 > "$dir/out" 2> "$dir/err"; then
  fail "--nproc 2 with a bad --set accepted"
fi
[ "$(grep -c 'did you mean "steps"' "$dir/err")" -eq 1 ] || fail "--nproc 2: expected one error: $(cat "$dir/err")"

# A valid override the script never uses runs the script and is reported at the end.
"$grpo" run "$dir/exp.lua" --out "$dir/run" --set train.steps=5 > "$dir/out" 2> "$dir/err" || fail "valid --set refused: $(cat "$dir/err")"
grep -q 'the script ran' "$dir/out" || fail "the script did not run"
grep -q 'warning: --set train.steps=5 was never used' "$dir/err" || fail "unused override not reported: $(cat "$dir/err")"

# Input paths resolve against the working directory; a missing one names both forms.
mkdir -p "$dir/work"
cat > "$dir/work/missing.lua" <<'LUA'
grpo.train { model = "runs/x/trian", data = {}, rules = "rules.lua" }
LUA
if (cd "$dir/work" && "$grpo" run missing.lua --out "$dir/run2" 2> "$dir/err"); then fail "a missing model accepted"; fi
resolved=$(cd "$dir/work" && pwd -P)/runs/x/trian
grep -qF 'missing.lua:1: grpo.train: option "model": no file or directory "runs/x/trian"' "$dir/err" ||
  fail "the error does not name the given path and the script line: $(cat "$dir/err")"
grep -qF "resolved against the working directory to $resolved" "$dir/err" ||
  fail "the error does not name the resolved path $resolved: $(cat "$dir/err")"
[ ! -e "$dir/run2/stages" ] || fail "the stage opened its record before checking its inputs"
echo ok
