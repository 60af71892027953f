#!/usr/bin/env bash
# A checkpoint save killed at any moment (SIGKILL) leaves a directory that loads as the previous
# checkpoint or as the new one, never a mix: `grpo init` writes seed 1's and seed 2's weights in turn, in
# three shards (110 MB), over the same directory and is killed at points spread over its save (from its first
# staged file on); after each kill the directory's log-probs must equal one of the two models' exactly
# (policy/file_set_commit.h), and loading it clears what the kill left.
set -euo pipefail
grpo=$1
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

cat > "$dir/config.json" <<'JSON'
{"model_type": "qwen2", "vocab_size": 8192, "hidden_size": 512, "intermediate_size": 1536, "num_hidden_layers": 6,
 "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 64, "tie_word_embeddings": false}
JSON
init() { "$grpo" init --config "$dir/config.json" --seed "$1" --out "$2" --max-shard-mb 40 > /dev/null; }
logprobs() { "$grpo" logprobs --model "$1" --ids 5,17,300,1999,42,7 2> /dev/null; }

init 1 "$dir/one"
init 2 "$dir/two"
ls "$dir/one" | grep -q 'model-00003-of-00003.safetensors' || fail "expected three shards: $(ls "$dir/one")"
one=$(logprobs "$dir/one")
two=$(logprobs "$dir/two")
[ "$one" != "$two" ] || fail "the two seeds should give different models"

staged() { ls -A "$dir/ck" 2> /dev/null | grep -q -e '\.saving$' -e '^\.commit\.json'; }
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
# Starts a writer and returns (in $writer) once its save has begun: its first staged file is there.
start_writer() {
  "$grpo" init --config "$dir/config.json" --seed "$1" --out "$dir/ck" --max-shard-mb 40 > /dev/null 2>&1 &
  writer=$!
  while ! staged && kill -0 "$writer" 2> /dev/null; do sleep 0.005; done
}

# How long the save itself takes: from its first staged file to the commit that renames them all.
init 1 "$dir/ck"
start_writer 2
begun=$(now_ms)
while staged; do sleep 0.005; done
save_ms=$(( $(now_ms) - begun ))
wait "$writer"

interrupted=0
for k in $(seq 0 13); do
  start_writer $(( k % 2 + 1 ))
  sleep "$(awk -v t="$save_ms" -v k="$k" 'BEGIN { printf "%.3f", t * k / 14 / 1000 }')"
  kill -9 "$writer" 2> /dev/null || true
  wait "$writer" 2> /dev/null || true
  if staged; then interrupted=$((interrupted + 1)); fi  # this kill hit the save itself
  got=$(logprobs "$dir/ck") || fail "kill $k: the directory does not load: $(ls -A "$dir/ck")"
  [ "$got" = "$one" ] || [ "$got" = "$two" ] || fail "kill $k: the loaded model is neither the old nor the new one"
  staged && fail "kill $k: loading left staged files: $(ls -A "$dir/ck")"
done
# Kills land while the files are staged or being committed; a few may come after the process ended.
[ "$interrupted" -ge 3 ] || fail "only $interrupted of 14 kills interrupted a save (a save takes ${save_ms} ms)"
echo "ok: $interrupted of 14 kills interrupted a save of ${save_ms} ms"
