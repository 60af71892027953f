#!/usr/bin/env bash
# The R1-Zero demo's task and reward rules (examples/r1_zero/): the generator checked by
# r1_zero_task.lua against Lua's own arithmetic, then `grpo rewards` scoring hand-made completions and
# 2000 corpus completions with examples/r1_zero/rules.lua, each against the values expected here.
set -euo pipefail
grpo=$1
here=$(cd "$(dirname "$0")" && pwd)
root=$here/../..
rules=$root/examples/r1_zero/rules.lua
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

lua5.4 "$here/r1_zero_task.lua" "$root" "$dir" || fail "task checks"

# Completions of "3+4*2" (answer 11) after the prompt "Q:3+4*2 A:<t>", with the expected
# format and accuracy rewards.
cat > "$dir/hand.jsonl" <<'EOF'
{"answer":"11","completion":"4*2=8,3+8=11</t><a>11</a>","want_format":1,"want_accuracy":1}
{"answer":"11","completion":"3+4=7,7*2=14</t><a>14</a>","want_format":1,"want_accuracy":0}
{"answer":"11","completion":"4*2=8,3+8=11<a>11</a>","want_format":0,"want_accuracy":1}
{"answer":"11","completion":"4*2=8,3+8=11</t>11","want_format":0,"want_accuracy":0}
{"answer":"11","completion":"4*2=8,3+8=11</t><a>11</a> Q:","want_format":0,"want_accuracy":1}
{"answer":"11","completion":"</t><a>11</a>","want_format":0,"want_accuracy":1}
{"answer":"11","completion":"4*2=8,3+8=11</t><a>11</a>\n","want_format":1,"want_accuracy":1}
{"answer":"11","completion":"4*2=8,3+8=11</t><a>12</a><a>11</a>","want_format":0,"want_accuracy":1}
{"answer":"11","completion":"4*2=8,3+8=11</t><a></a>","want_format":0,"want_accuracy":0}
{"answer":"11","completion":"4*2=8<t>3+8=11</t><a>11</a>","want_format":0,"want_accuracy":1}
{"answer":"11","completion":"4*2=8,3+8=11</t><a> 11 </a>","want_format":1,"want_accuracy":1}
{"answer":"11","completion":"4*2=8,3+8=11</t><a>011</a>","want_format":1,"want_accuracy":0}
{"answer":11,"completion":"4*2=8,3+8=11</t><a>11</a>","want_format":1,"want_accuracy":1}
{"answer":"11","completion":"4*2=8,3+8=11</t><a>11.0</a>","want_format":1,"want_accuracy":0}
EOF

# Every scored record must carry the rewards it asked for, and the reward 0.1 * format + accuracy.
check_scored() {
  lua5.4 - "$1" <<'EOF'
local bad, n = 0, 0
for line in io.lines(arg[1]) do
  n = n + 1
  local want_f, want_a = tonumber(line:match('"want_format":(%d)')), tonumber(line:match('"want_accuracy":(%d)'))
  local rewards = line:match('"rewards":(%b{})') or ""
  local f, a = tonumber(rewards:match('"format":([%d.]+)')), tonumber(rewards:match('"accuracy":([%d.]+)'))
  local total = tonumber(line:match('"reward":([%d.e+-]+)'))
  if f ~= want_f or a ~= want_a or not total or math.abs(total - (0.1 * want_f + want_a)) > 1e-9 then
    bad = bad + 1
    if bad <= 5 then io.stderr:write("line ", n, ": ", line, "\n") end
  end
end
if n == 0 or bad > 0 then io.stderr:write(bad, " of ", n, " records scored wrongly\n") os.exit(1) end
print(n .. " records scored as expected")
EOF
}

"$grpo" rewards --rules "$rules" --in "$dir/hand.jsonl" --out "$dir/hand_scored.jsonl" > "$dir/summary.txt" ||
  fail "grpo rewards on hand-made completions"
check_scored "$dir/hand_scored.jsonl" || fail "hand-made completions"
# The summary table: 14 samples, format mean 7/14, accuracy mean 9/14, no failures.
grep -q '^14 samples' "$dir/summary.txt" || fail "summary: $(cat "$dir/summary.txt")"
awk '$1 == "format" && $2 == "0.1" && $3 == "0.5000" && $6 == "0" { ok = 1 } END { exit !ok }' "$dir/summary.txt" ||
  fail "format row: $(cat "$dir/summary.txt")"
awk '$1 == "accuracy" && $2 == "1" && $3 == "0.6429" && $6 == "0" { ok = 1 } END { exit !ok }' "$dir/summary.txt" ||
  fail "accuracy row: $(cat "$dir/summary.txt")"

# A record without an answer: the accuracy rule fails for it alone, with its message; the file is scored.
printf '%s\n' '{"completion":"1+1=2</t><a>2</a>"}' '{"answer":"2","completion":"1+1=2</t><a>2</a>"}' > "$dir/missing.jsonl"
# The summary shows the first 100 characters of the message, which start with the rules file's path:
# score with a copy at a short path so the message's end is visible wherever the checkout lives.
cp "$rules" "$dir/rules.lua"
"$grpo" rewards --rules "$dir/rules.lua" --in "$dir/missing.jsonl" > "$dir/summary.txt" || fail "grpo rewards stopped on a rule failure"
awk '$1 == "accuracy" && $3 == "0.5000" && $6 == "1" { ok = 1 } END { exit !ok }' "$dir/summary.txt" ||
  fail "missing answer not counted as one failure: $(cat "$dir/summary.txt")"
grep -q "the sample has no 'answer' field" "$dir/summary.txt" || fail "failure message: $(cat "$dir/summary.txt")"

# The corpus: the rules agree with the format and answer checks written in r1_zero_task.lua.
"$grpo" rewards --rules "$rules" --in "$dir/corpus_samples.jsonl" --out "$dir/corpus_scored.jsonl" --threads 2 \
  > "$dir/summary.txt" || fail "grpo rewards on the corpus"
check_scored "$dir/corpus_scored.jsonl" || fail "corpus completions"
echo "ok"
