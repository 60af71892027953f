#!/usr/bin/env bash
# The R1 example's task and reward rules (examples/r1/): the generator checked by r1_task.lua
# (answers recomputed, every corpus document read back, exact shares), then `grpo rewards` scoring
# hand-made completions and 3,600 corpus completions with examples/r1/rules.lua, each rule's value
# against the value expected here; and a stage's weights set by a `local WEIGHTS` line (as r1.lua does).
set -euo pipefail
grpo=$1
here=$(cd "$(dirname "$0")" && pwd)
root=$here/../..
rules=$root/examples/r1/rules.lua
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

lua5.4 "$here/r1_task.lua" "$root" "$dir" || fail "task checks"

# Hand-made completions: "Q:3p(4m2)<t>" (latin, answer 5), "Θ:3π(4μ2)<t>" (greek), "R:123<t>" (general).
cat > "$dir/hand.jsonl" <<'JSON'
{"kind":"reasoning","script":"latin","answer":"5","completion":"4m2e2,3p2e5</t><a>5</a>","want":{"accuracy":1,"format":1,"language":1,"verification":0,"helpfulness":0,"harmlessness":1}}
{"kind":"reasoning","script":"latin","answer":"5","completion":"4m2e3,check:4m2e2,3p2e5</t><a>5</a>","want":{"accuracy":1,"format":1,"language":1,"verification":1,"helpfulness":0,"harmlessness":1}}
{"kind":"reasoning","script":"greek","answer":"5","completion":"4μ2ι2,3p2e5</t><a>5</a>","want":{"accuracy":1,"format":1,"language":0.5,"verification":0,"helpfulness":0,"harmlessness":1}}
{"kind":"reasoning","script":"greek","answer":"5","completion":"4μ2ι2,ελεγχ:4μ2ι2,3π2ι6</t><a>6</a>","want":{"accuracy":0,"format":1,"language":1,"verification":1,"helpfulness":0,"harmlessness":1}}
{"kind":"reasoning","script":"latin","answer":"5","completion":"4m2e2,3p2e5<a>5</a>","want":{"accuracy":1,"format":0,"language":1,"verification":0,"helpfulness":0,"harmlessness":1}}
{"kind":"reasoning","script":"latin","answer":"5","completion":"4m2e2,3p2e5</t><a>5</a>μμμμ","want":{"accuracy":1,"format":0,"language":1,"verification":0,"helpfulness":0,"harmlessness":1}}
{"kind":"reasoning","script":"latin","answer":"5","completion":"</t><a>5</a>","want":{"accuracy":1,"format":0,"language":0,"verification":0,"helpfulness":0,"harmlessness":1}}
{"kind":"reasoning","script":"latin","answer":"5","completion":"4m2e2</t><a>check:5</a>","want":{"accuracy":0,"format":1,"language":1,"verification":0,"helpfulness":0,"harmlessness":1}}
{"kind":"reasoning","script":"latin","answer":"5","completion":"4m2e2,3p2e5#</t><a>5</a>","want":{"accuracy":1,"format":1,"language":1,"verification":0,"helpfulness":0,"harmlessness":0}}
{"kind":"general","answer":"321","completion":"</t><a>321</a>","want":{"accuracy":0,"format":1,"language":0,"verification":0,"helpfulness":1,"harmlessness":1}}
{"kind":"general","answer":"321","completion":"#</t><a>321</a>","want":{"accuracy":0,"format":1,"language":0,"verification":0,"helpfulness":1,"harmlessness":0}}
{"kind":"general","answer":"321","completion":"<a>321</a></t><a>123</a>","want":{"accuracy":0,"format":0,"language":0,"verification":0,"helpfulness":0,"harmlessness":1}}
{"kind":"general","answer":"321","completion":"</t><a>123</a>","want":{"accuracy":0,"format":1,"language":0,"verification":0,"helpfulness":0,"harmlessness":1}}
{"kind":"general","answer":"321","completion":"<a>321</a>","want":{"accuracy":0,"format":0,"language":0,"verification":0,"helpfulness":0,"harmlessness":1}}
JSON

# Every scored record must carry each rule's expected value, and the total with the given weights.
check_scored() {
  lua5.4 - "$1" "$2" <<'LUA'
local weights = {}
for pair in arg[2]:gmatch("[^,]+") do
  local k, v = pair:match("^(%w+)=([%d.]+)$")
  weights[k] = tonumber(v)
end
local bad, n = 0, 0
for line in io.lines(arg[1]) do
  n = n + 1
  local want = line:match('"want":(%b{})')
  local rewards = line:match('"rewards":(%b{})') or ""
  local total, expected_total = tonumber(line:match('"reward":([%d.e+-]+)')), 0
  local ok = total ~= nil and not line:find('"reward_failures"')
  for rule in ("accuracy format language verification helpfulness harmlessness"):gmatch("%a+") do
    local w, got = tonumber(want:match('"' .. rule .. '":([%d.e+-]+)')), tonumber(rewards:match('"' .. rule .. '":([%d.e+-]+)'))
    if not w or not got or math.abs(w - got) > 1e-12 then ok = false end
    expected_total = expected_total + (weights[rule] or 0) * (w or 0)
  end
  if not ok or math.abs(total - expected_total) > 1e-9 then
    bad = bad + 1
    if bad <= 5 then io.stderr:write("line ", n, ": ", line, "\n") end
  end
end
if n == 0 or bad > 0 then io.stderr:write(bad, " of ", n, " records scored wrongly\n") os.exit(1) end
print(n .. " records scored as expected")
LUA
}

"$grpo" rewards --rules "$rules" --in "$dir/hand.jsonl" --out "$dir/hand_scored.jsonl" > "$dir/summary.txt" ||
  fail "grpo rewards on hand-made completions"
check_scored "$dir/hand_scored.jsonl" "accuracy=1,format=0.1" || fail "hand-made completions"
grep -q '^14 samples' "$dir/summary.txt" || fail "summary: $(cat "$dir/summary.txt")"

# A stage's weights, as r1.lua writes them: the same file behind a `local WEIGHTS = {...}` line.
{ echo 'local WEIGHTS = { accuracy = 1.0, format = 0.1, language = 0.5, helpfulness = 1.0, harmlessness = 0.5 }'
  cat "$rules"; } > "$dir/rules_all.lua"
"$grpo" rewards --rules "$dir/rules_all.lua" --in "$dir/hand.jsonl" --out "$dir/hand_all.jsonl" > "$dir/summary.txt" ||
  fail "grpo rewards with stage weights"
check_scored "$dir/hand_all.jsonl" "accuracy=1,format=0.1,language=0.5,helpfulness=1,harmlessness=0.5" ||
  fail "hand-made completions with stage weights"
awk '$1 == "language" && $2 == "0.5" { ok = 1 } END { exit !ok }' "$dir/summary.txt" ||
  fail "language weight: $(cat "$dir/summary.txt")"

# The corpus: the rules agree with the document checks of r1_task.lua.
"$grpo" rewards --rules "$rules" --in "$dir/corpus_samples.jsonl" --out "$dir/corpus_scored.jsonl" --threads 2 \
  > "$dir/summary.txt" || fail "grpo rewards on the corpus"
check_scored "$dir/corpus_scored.jsonl" "accuracy=1,format=0.1" || fail "corpus completions"
echo "ok"
