#!/usr/bin/env bash
# Sampling a teacher behind an OpenAI-compatible endpoint, against `grpo serve` on loopback:
# `grpo sample --endpoint` gives the completions local `grpo sample` gives for the same seed; a
# grpo.sample{ endpoint = ... } experiment keeps reasoning_content and content apart, scores with rules
# and feeds grpo.sft; a sampling killed mid-way and run again ends with every record once; a missing
# key variable, a refused key and an unknown model are clear errors; the script check sends nothing.
set -euo pipefail
grpo=$1
dir=$(mktemp -d)
server_pid=
cleanup() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; fi
  rm -rf "$dir"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; [ -f "$dir/server.log" ] && tail -20 "$dir/server.log" >&2; exit 1; }
py() { /usr/bin/python3 "$@"; }

cat > "$dir/init.lua" <<'LUA'
grpo.init { config = { model_type = "qwen2", hidden_size = 32, intermediate_size = 64, num_hidden_layers = 2,
                       num_attention_heads = 4, num_key_value_heads = 2, max_position_embeddings = 256 },
            tokenizer = { chars = "abcdefghijklmnopqrstuvwxyz :<>/\n" }, seed = 3, out = "tiny" }
LUA
"$grpo" run "$dir/init.lua" --out "$dir/run" > /dev/null 2>&1 || fail "grpo run (init) failed"
model="$dir/run/tiny"
# A chat template whose generation prompt opens a <think> block, as DeepSeek-R1's does: the tiny model's
# answers are reasoning until it writes </think>.
cat > "$dir/template.json" <<'JSON'
{"description": "test", "begin": "", "roles": {"system": "system: {content}\n", "user": "user: {content}\n",
 "assistant": "assistant: {content}\n"}, "generation_prompt": "assistant: <think>", "stop": ["\nuser:"]}
JSON

export GRPO_TEST_KEY=sekret
source "$(cd "$(dirname "$0")/../.." && pwd)/tests/tools/grpo_serve.sh"
start_grpo_serve --model "$model" --served-model-name tiny --template "$dir/template.json" --reasoning-marker "</think>" \
  --api-key-env GRPO_TEST_KEY
url="http://127.0.0.1:$port/v1"

for q in abc hello world xyz; do echo "{\"prompt\": \"$q\", \"answer\": \"k\"}"; done > "$dir/prompts.jsonl"

# 1. The completions API with a seed: the same completions as local sampling of that model and seed.
"$grpo" sample --endpoint "$url" --model-name tiny --api-key-env GRPO_TEST_KEY --api completions --in "$dir/prompts.jsonl" \
  --out "$dir/served.jsonl" -n 2 --seed 17 --max-new-tokens 24 2> "$dir/served.log" || { cat "$dir/served.log"; fail "sample --endpoint"; }
"$grpo" sample --model "$model" --in "$dir/prompts.jsonl" --out "$dir/local.jsonl" -n 2 --seed 17 --max-new-tokens 24 2> /dev/null \
  || fail "local sample"
py - "$dir/served.jsonl" "$dir/local.jsonl" <<'PY' || fail "served and local completions differ"
import json, sys
served = [json.loads(l) for l in open(sys.argv[1])]
local = sorted((json.loads(l) for l in open(sys.argv[2])), key=lambda r: (r["prompt_index"], r["sample_index"]))
assert len(served) == 8 and len(local) == 8, (len(served), len(local))
for s, l in zip(served, local):
    assert (s["prompt_index"], s["sample_index"]) == (l["prompt_index"], l["sample_index"]), (s, l)
    assert s["prompt"] == l["prompt"] and s["answer"] == "k"
    assert s["completion"] == l["completion"] == s["content"], (s, l)
    assert s["finish_reason"] == l["finish_reason"], (s, l)
    assert s["reasoning_content"] == "" and "messages" not in s
# usage is counted per response: each prompt's records add up to its tokens (EOS included)
for p in range(4):
    assert sum(s["completion_tokens"] for s in served if s["prompt_index"] == p) == \
           sum(len(l["completion_ids"]) for l in local if l["prompt_index"] == p)
PY

# 2. An experiment: the chat API, reasoning apart from content, rules, and SFT on the result.
cat > "$dir/rules.lua" <<'LUA'
return { { name = "has_k", rule = function(s) return s.completion:find("k", 1, true) and 1 or 0 end },
         { name = "long", rule = function(s) return (s.completion_tokens or 0) >= 5 and 1 or 0 end } }
LUA
cat > "$dir/exp.lua" <<LUA
local url = "$url"
local data = { { prompt = "abc", id = 1 }, { messages = { { role = "system", content = "be brief" },
               { role = "user", content = "hello" }, { role = "assistant", content = "old answer" } }, id = 2 } }
local path, samples, means = grpo.sample { endpoint = url, model = "tiny", api_key_env = "GRPO_TEST_KEY", data = data, n = 3,
                                           max_new_tokens = 30, seed = 5, rules = grpo.script_dir .. "/rules.lua",
                                           concurrency = 2, out = "teacher.jsonl" }
assert(#samples == 6, "three samples of two prompts")
assert(means.failed_prompts == 0, "no prompt failed")
for i, s in ipairs(samples) do
  assert(s.prompt_index == (i - 1) // 3 and s.sample_index == (i - 1) % 3, "prompt order")
  assert(s.rewards.has_k ~= nil and s.rewards.long ~= nil and s.reward ~= nil, "scored")
  assert(s.messages[#s.messages].role == "assistant" and s.messages[#s.messages].content == s.content, "assistant turn")
end
assert(samples[1].prompt == "abc" and samples[1].id == 1, "a text prompt stays text")
assert(type(samples[4].prompt) == "table" and #samples[4].prompt == 2 and samples[4].prompt[2].content == "hello",
       "a conversation is sent up to its last user turn")
-- Rejection sampling from the same teacher, with the same seed: the same answers, so what it keeps is
-- what the keep rule selects from the samples above (distinct has_k answers, two per prompt at most).
local kept_path, stats = grpo.rejection_sample { endpoint = url, model = "tiny", api_key_env = "GRPO_TEST_KEY", data = data,
                                                 n = 3, max_new_tokens = 30, seed = 5, rules = grpo.script_dir .. "/rules.lua",
                                                 keep = { has_k = 1 }, max_per_prompt = 2, out = "rejection" }
local expected, seen = 0, {}
for _, s in ipairs(samples) do
  local key = s.prompt_index .. "\0" .. s.completion
  seen[s.prompt_index] = seen[s.prompt_index] or 0
  if s.rewards.has_k == 1 and not seen[key] and seen[s.prompt_index] < 2 then
    seen[key] = true
    seen[s.prompt_index] = seen[s.prompt_index] + 1
    expected = expected + 1
  end
end
assert(stats.seen == 6 and stats.failed_prompts == 0, "six samples seen, no prompt failed")
assert(stats.kept == expected, ("kept %d, the keep rule selects %d"):format(stats.kept, expected))
assert(#grpo.read_jsonl(kept_path) == expected, "kept.jsonl holds the kept records")
local tuned = grpo.sft { model = "$model", data = path, template = "$dir/template.json", steps = 2, batch_size = 2 }
print("ok", path, tuned)
LUA
"$grpo" run "$dir/exp.lua" --out "$dir/exp" > "$dir/exp.out" 2> "$dir/exp.log" || { cat "$dir/exp.log"; fail "the endpoint experiment failed"; }
py - "$dir/exp/teacher.jsonl" "$dir/rules.lua" <<'PY' || fail "experiment records"
import json, sys
records = [json.loads(l) for l in open(sys.argv[1])]
assert len(records) == 6
with_reasoning = 0
for r in records:
    for key in ("content", "reasoning_content", "completion", "messages", "rewards", "reward", "finish_reason", "completion_tokens"):
        assert key in r, (key, r)
    if r["reasoning_content"]:
        with_reasoning += 1
        assert r["completion"] == "<think>\n" + r["reasoning_content"] + "\n</think>\n\n" + r["content"], r
        assert r["messages"][-1] == {"role": "assistant", "content": r["content"], "reasoning_content": r["reasoning_content"]}
    else:
        assert r["completion"] == r["content"], r
    # the rules, recomputed here on the record
    assert r["rewards"]["has_k"] == (1.0 if "k" in r["completion"] else 0.0), r
    assert r["rewards"]["long"] == (1.0 if r["completion_tokens"] >= 5 else 0.0), r
    assert r["reward"] == r["rewards"]["has_k"] + r["rewards"]["long"], r
assert with_reasoning > 0, "the template opens a reasoning block: some answers have reasoning_content"
PY
grep -q "sekret" "$dir/exp.log" "$dir/exp/"*.json* 2>/dev/null && fail "the API key appears in the log or the run directory"
# A second run into the same directory finds the stage finished and sends nothing.
"$grpo" run "$dir/exp.lua" --out "$dir/exp" > /dev/null 2> "$dir/exp2.log" || { cat "$dir/exp2.log"; fail "the rerun failed"; }
grep -q "\[sample\] finished in an earlier run" "$dir/exp2.log" || fail "the rerun sampled again"

# 3. Killed mid-way, run again: every record once, the same records as an uninterrupted run.
for i in $(seq 1 60); do echo "{\"prompt\": \"q$(printf '%03d' "$i")\"}" | tr 0-9 a-j; done > "$dir/many.jsonl"
many=(sample --endpoint "$url" --model-name tiny --api-key-env GRPO_TEST_KEY --in "$dir/many.jsonl" -n 2 --seed 9
      --max-new-tokens 40 --concurrency 1)
"$grpo" "${many[@]}" --out "$dir/whole.jsonl" 2> /dev/null || fail "the uninterrupted run failed"
"$grpo" "${many[@]}" --out "$dir/killed.jsonl" 2> "$dir/killed.log" &
sampler=$!
for _ in $(seq 1 400); do
  [ -f "$dir/killed.jsonl" ] && [ "$(wc -l < "$dir/killed.jsonl")" -ge 10 ] && break
  sleep 0.02
done
kill -9 "$sampler" 2>/dev/null || true
wait "$sampler" 2>/dev/null || true
before=$(wc -l < "$dir/killed.jsonl")
[ "$before" -lt 120 ] || fail "the sampling finished before it was killed ($before lines)"
printf '{"prompt_index": 59, "sample' >> "$dir/killed.jsonl"  # a line torn by the kill
"$grpo" "${many[@]}" --out "$dir/killed.jsonl" 2> "$dir/resumed.log" || { cat "$dir/resumed.log"; fail "the rerun failed"; }
grep -q "from an earlier run" "$dir/resumed.log" || fail "the rerun did not say what it resumed"
py - "$dir/killed.jsonl" "$dir/whole.jsonl" "$dir/resumed.log" <<'PY' || fail "resumed records"
import json, re, sys
resumed = [json.loads(l) for l in open(sys.argv[1])]
whole = [json.loads(l) for l in open(sys.argv[2])]
keys = [(r["prompt_index"], r["sample_index"]) for r in resumed]
assert keys == [(p, s) for p in range(60) for s in range(2)], "every record once, in prompt order"
assert resumed == whole, "the resumed file is the uninterrupted run's"
m = re.search(r"\((\d+) from an earlier run in .*?, (\d+) requested", open(sys.argv[3]).read())
assert m and int(m.group(1)) > 0 and int(m.group(1)) + int(m.group(2)) == 60, m and m.groups()
PY

# 4. Errors: a missing key variable (before any request), a refused key, an unknown model.
if env -u GRPO_TEST_KEY "$grpo" sample --endpoint "$url" --model-name tiny --api-key-env GRPO_TEST_KEY --prompt abc > /dev/null 2> "$dir/err1"; then
  fail "a missing key variable was accepted"
fi
grep -q "environment variable GRPO_TEST_KEY is not set" "$dir/err1" || { cat "$dir/err1"; fail "missing key message"; }
if GRPO_TEST_KEY=wrong "$grpo" sample --endpoint "$url" --model-name tiny --api-key-env GRPO_TEST_KEY --in "$dir/prompts.jsonl" \
    > /dev/null 2> "$dir/err2"; then
  fail "a wrong key was accepted"
fi
grep -q "HTTP 401" "$dir/err2" && grep -q "the API key was refused" "$dir/err2" || { cat "$dir/err2"; fail "refused key message"; }
if "$grpo" sample --endpoint "$url" --model-name nosuch --api-key-env GRPO_TEST_KEY --prompt abc > /dev/null 2> "$dir/err3"; then
  fail "an unknown model was accepted"
fi
grep -q "HTTP 404" "$dir/err3" || { cat "$dir/err3"; fail "unknown model message"; }

# 5. The script check needs no model directory and contacts nobody; it does check the key variable and the URL.
cat > "$dir/check.lua" <<'LUA'
grpo.sample { endpoint = "http://127.0.0.1:9/v1", model = "not-a-directory", api_key_env = "GRPO_TEST_KEY",
              data = { { prompt = "abc" } } }
LUA
"$grpo" run --check "$dir/check.lua" --out "$dir/check" > /dev/null 2> "$dir/check.log" || { cat "$dir/check.log"; fail "check failed"; }
grep -q "not contacted" "$dir/check.log" || { cat "$dir/check.log"; fail "check line"; }
if env -u GRPO_TEST_KEY "$grpo" run --check "$dir/check.lua" --out "$dir/check" > /dev/null 2> "$dir/check2.log"; then
  fail "the check accepted a missing key variable"
fi
grep -q "grpo.sample: option \"api_key_env\": the environment variable GRPO_TEST_KEY is not set" "$dir/check2.log" || { cat "$dir/check2.log"; fail "check key message"; }
sed -i 's#http://127.0.0.1:9/v1#127.0.0.1:9/v1#' "$dir/check.lua"
if "$grpo" run --check "$dir/check.lua" --out "$dir/check" > /dev/null 2> "$dir/check3.log"; then fail "the check accepted a URL without scheme"; fi
grep -q "option \"endpoint\": endpoint \"127.0.0.1:9/v1\": no scheme" "$dir/check3.log" || { cat "$dir/check3.log"; fail "check URL message"; }
cat > "$dir/check4.lua" <<'LUA'
grpo.sample { endpoint = "http://127.0.0.1:9/v1", model = "m", api = "completions",
              data = { { prompt = "abc" }, { messages = { { role = "user", content = "hi" } } } } }
LUA
if "$grpo" run --check "$dir/check4.lua" --out "$dir/check" > /dev/null 2> "$dir/check4.log"; then fail "the check accepted a conversation for the completions API"; fi
grep -q "record 2 is a conversation: api = \"completions\" takes text prompts" "$dir/check4.log" || { cat "$dir/check4.log"; fail "check conversation message"; }
echo "sample_endpoint: ok"
