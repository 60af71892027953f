#!/usr/bin/env bash
# grpo serve end to end on loopback with real clients: curl for every endpoint, a streamed answer and
# the error statuses; the official `openai` npm client (when scripts/fetch_tokenizers installed it);
# a completion equal to `grpo sample`'s for the same seed; SIGTERM with a request in flight exits 0.
set -euo pipefail
grpo=$1
root=$(cd "$(dirname "$0")/../.." && pwd)
dir=$(mktemp -d)
server_pid=
cleanup() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; fi
  rm -rf "$dir"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; [ -f "$dir/server.log" ] && cat "$dir/server.log" >&2; exit 1; }
curl_() { curl --silent --show-error --max-time 30 "$@"; }

cat > "$dir/exp.lua" <<'LUA'
grpo.init { config = { model_type = "qwen2", hidden_size = 32, intermediate_size = 64, num_hidden_layers = 2,
                       num_attention_heads = 4, num_key_value_heads = 2, max_position_embeddings = 256 },
            tokenizer = { chars = "abcdefghijklmnopqrstuvwxyz :[]" }, seed = 3, out = "tiny" }
LUA
"$grpo" run "$dir/exp.lua" --out "$dir/run" > /dev/null 2>&1 || fail "grpo run (init) failed"
model="$dir/run/tiny"
# A plain-text chat template whose generation prompt opens a [ ... ] reasoning block.
cat > "$dir/template.json" <<'JSON'
{"description": "test", "begin": "", "roles": {"system": "system: {content}\n", "user": "user: {content}\n",
 "assistant": "assistant: {content}\n"}, "generation_prompt": "assistant: [", "stop": ["\nuser:"]}
JSON

# Starts the server in the background; sets server_pid and port.
source "$root/tests/tools/grpo_serve.sh"
start_server() {
  start_grpo_serve --model "$model" --served-model-name tiny --template "$dir/template.json" --reasoning-marker "]" "$@"
}

export GRPO_TEST_KEY=sekret
start_server --api-key-env GRPO_TEST_KEY
base="http://127.0.0.1:$port"
auth=(-H "Authorization: Bearer sekret")

[ "$(curl_ "$base/health" | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["status"])')" = ok ] || fail "/health"
curl_ "${auth[@]}" "$base/v1/models" | grep -q '"id":"tiny"' || fail "/v1/models does not list tiny"

# A completion with a seed is grpo sample's completion for the same seed and settings.
body='{"model": "tiny", "prompt": "abc", "n": 3, "seed": 17, "temperature": 1.0, "max_tokens": 24}'
curl_ "${auth[@]}" -H 'Content-Type: application/json' -d "$body" "$base/v1/completions" > "$dir/served.json"
"$grpo" sample --model "$model" --prompt abc -n 3 --seed 17 --temperature 1.0 --max-new-tokens 24 > "$dir/sampled.jsonl" 2> /dev/null
/usr/bin/python3 - "$dir/served.json" "$dir/sampled.jsonl" <<'PY' || fail "served and sampled completions differ"
import json, sys
served = json.load(open(sys.argv[1]))
sampled = [json.loads(line) for line in open(sys.argv[2])]
texts = [c["text"] for c in sorted(served["choices"], key=lambda c: c["index"])]
expected = [s["completion"] for s in sorted(sampled, key=lambda s: s["sample_index"])]
assert texts == expected, (texts, expected)
assert [c["finish_reason"] for c in sorted(served["choices"], key=lambda c: c["index"])] == [s["finish_reason"] for s in sampled]
assert served["usage"]["completion_tokens"] == sum(len(s["completion_ids"]) for s in sampled)
PY

# Chat: reasoning_content before the marker; streamed, the same answer, then [DONE].
chat='{"model": "tiny", "messages": [{"role": "user", "content": "hi"}], "seed": 5, "max_tokens": 40}'
curl_ "${auth[@]}" -H 'Content-Type: application/json' -d "$chat" "$base/v1/chat/completions" > "$dir/chat.json"
stream_body=$(echo "$chat" | sed 's/}$/, "stream": true, "stream_options": {"include_usage": true}}/')
curl_ -N "${auth[@]}" -H 'Content-Type: application/json' -d "$stream_body" "$base/v1/chat/completions" > "$dir/chat.sse"
/usr/bin/python3 - "$dir/chat.json" "$dir/chat.sse" <<'PY' || fail "the streamed chat answer differs from the whole one"
import json, sys
whole = json.load(open(sys.argv[1]))["choices"][0]
lines = [l[len("data: "):] for l in open(sys.argv[2]).read().split("\n") if l.startswith("data: ")]
assert lines[-1] == "[DONE]", lines[-3:]
chunks = [json.loads(l) for l in lines[:-1]]
reasoning = "".join(c["choices"][0]["delta"].get("reasoning_content", "") for c in chunks if c["choices"])
content = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
assert reasoning == whole["message"].get("reasoning_content", ""), (reasoning, whole)
assert content == whole["message"]["content"], (content, whole)
assert "usage" in chunks[-1] and chunks[-1]["choices"] == []
PY

# Errors: OpenAI's shape and status.
status() { curl --silent --max-time 30 -o "$dir/err.json" -w '%{http_code}' "$@"; }
[ "$(status -H 'Content-Type: application/json' -d "$body" "$base/v1/completions")" = 401 ] || fail "no key: not 401"
[ "$(status "${auth[@]}" -H 'Content-Type: application/json' -d '{"model": ' "$base/v1/completions")" = 400 ] || fail "bad JSON: not 400"
[ "$(status "${auth[@]}" -H 'Content-Type: application/json' -d '{"model": "tiny", "prompt": "a", "tempreature": 1}' "$base/v1/completions")" = 400 ] || fail "unknown field: not 400"
grep -q '"param":"tempreature"' "$dir/err.json" || fail "the unknown field is not named: $(cat "$dir/err.json")"
[ "$(status "${auth[@]}" -H 'Content-Type: application/json' -d '{"model": "other", "prompt": "a"}' "$base/v1/completions")" = 404 ] || fail "unknown model: not 404"
[ "$(status "${auth[@]}" "$base/v1/engines")" = 404 ] || fail "unknown path: not 404"
long=$(head -c 400 /dev/zero | tr '\0' a)
[ "$(status "${auth[@]}" -H 'Content-Type: application/json' -d "{\"model\": \"tiny\", \"prompt\": \"$long\"}" "$base/v1/completions")" = 413 ] || fail "prompt over the context: not 413"
grep -q '"code":"context_length_exceeded"' "$dir/err.json" || fail "413 body: $(cat "$dir/err.json")"

# The official openai npm client, when installed.
if [ -d "$root/build/npm/node_modules/openai" ] && command -v node > /dev/null; then
  NODE_PATH="$root/build/npm/node_modules" timeout 60 node "$root/tests/tools/openai_npm_client.cjs" "$base/v1" sekret \
    || fail "the openai npm client"
else
  echo "skipped: the openai npm client (run scripts/fetch_tokenizers to install it into build/npm)"
fi

# SIGTERM with a streamed request in flight: the request ends with [DONE], the server exits 0.
kill "$server_pid"
wait "$server_pid" || fail "the server exited non-zero on SIGTERM"
server_pid=
start_server --drain-seconds 1
base="http://127.0.0.1:$port"
slow='{"model": "tiny", "prompt": "a", "max_tokens": 250, "ignore_eos": true, "stream": true}'
curl_ -N -H 'Content-Type: application/json' -d "$slow" "$base/v1/completions" > "$dir/inflight.sse" &
curl_pid=$!
for _ in $(seq 1 100); do grep -q '^data: ' "$dir/inflight.sse" 2>/dev/null && break; sleep 0.05; done
kill -TERM "$server_pid"
code=0
wait "$server_pid" || code=$?
server_pid=
[ "$code" = 0 ] || fail "exit status $code after SIGTERM"
wait "$curl_pid" || true
tail -n 2 "$dir/inflight.sse" | grep -q '^data: \[DONE\]' || fail "the in-flight stream did not end with [DONE]: $(tail -c 300 "$dir/inflight.sse")"
echo ok
