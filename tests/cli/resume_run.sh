#!/usr/bin/env bash
# grpo run resumes a run directory exactly: a run SIGKILLed in the middle of training and rerun writes
# the same metrics.jsonl and samples.jsonl, line for line, as an uninterrupted run (timing fields
# aside); finished stages are not redone; a rerun with a changed option is refused, naming the key.
set -euo pipefail
grpo=$1
dir=$(mktemp -d)
pid=
trap '[ -n "$pid" ] && kill -9 "$pid" 2>/dev/null; rm -rf "$dir"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
# Bitwise equality on CPU needs a fixed thread count.
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1

cat > "$dir/rules.lua" <<'LUA'
return { { name = "accuracy", rule = function(s) return s.completion:sub(1, 1) == s.answer and 1 or 0 end } }
LUA
cat > "$dir/exp.lua" <<'LUA'
local data = {}
for i = 1, 12 do data[#data + 1] = { question = tostring(i % 3), answer = "a" } end
local corpus = {}
for i = 1, 200 do corpus[#corpus + 1] = { text = "q" .. (i % 3) .. ":" .. (i % 2 == 0 and "a" or "b") } end
local m = grpo.init { config = { model_type = "qwen2", hidden_size = 32, intermediate_size = 64, num_hidden_layers = 2,
                                 num_attention_heads = 4, num_key_value_heads = 2 },
                      tokenizer = { chars = "abq012:" } }
m = grpo.pretrain { model = m, data = corpus, steps = 5, batch_size = 4, seq_len = 16 }
grpo.train { model = m, data = data, prompt = "q{question}:", rules = grpo.script_dir .. "/rules.lua", steps = 24,
             prompts_per_step = 2, group_size = 4, max_new_tokens = 3, lr = 1e-3, warmup = 3, kl_coef = 0.01,
             reference_reset_every = 3, epochs = 2, minibatches = 2, sample_every = 1, checkpoint_every = 2,
             keep_checkpoints = 2 }
LUA
# Wall-clock fields differ between any two runs; everything else must match exactly.
strip_timing() { sed -E 's/"(timing|tokens_per_second)\/[^"]*":[^,}]*,?//g' "$1"; }

"$grpo" run "$dir/exp.lua" --out "$dir/a" 2> "$dir/log_a" || { cat "$dir/log_a"; fail "uninterrupted run failed"; }
[ "$(wc -l < "$dir/a/train/metrics.jsonl")" -eq 24 ] || fail "uninterrupted run: expected 24 metric lines"

# Kill the second run once it has logged a step past one of its checkpoints. Any checkpoint will do
# (keep_checkpoints removes the early ones), so the window is most of the run, not a few steps that a
# loaded machine's polling could miss.
past_a_checkpoint() {
  local lines ck
  lines=$(wc -l < "$dir/b/train/metrics.jsonl" 2>/dev/null) || return 1
  for ck in "$dir/b/train/checkpoints"/step-*; do
    [ -d "$ck" ] && [ "$lines" -gt "${ck##*step-}" ] && return 0
  done
  return 1
}
"$grpo" run "$dir/exp.lua" --out "$dir/b" 2> "$dir/log_b1" &
pid=$!
for _ in $(seq 1 1200); do
  if past_a_checkpoint; then
    kill -9 "$pid"
    break
  fi
  sleep 0.05
done
wait "$pid" 2>/dev/null && fail "the run finished before it could be killed (make it longer)"
pid=
grep -q '"complete": false' "$dir/b/stages/02-train.json" || fail "train stage not left incomplete by the kill"
grep -q '"complete": true' "$dir/b/stages/01-pretrain.json" || fail "pretrain not recorded complete"
killed_lines=$(wc -l < "$dir/b/train/metrics.jsonl")

"$grpo" run "$dir/exp.lua" --out "$dir/b" 2> "$dir/log_b2" || { cat "$dir/log_b2"; fail "resumed run failed"; }
grep -q 'resuming at step' "$dir/log_b2" || fail "the rerun did not resume from a checkpoint: $(cat "$dir/log_b2")"
grep -q '\[pretrain\] finished in an earlier run' "$dir/log_b2" || fail "pretrain was redone"
if grep -q '^\[pretrain\] final loss' "$dir/log_b2"; then fail "pretrain was redone"; fi
diff <(strip_timing "$dir/a/train/metrics.jsonl") <(strip_timing "$dir/b/train/metrics.jsonl") > "$dir/diff" ||
  { head -c 3000 "$dir/diff"; fail "metrics of the resumed run differ from the uninterrupted run (killed at $killed_lines lines)"; }
cmp -s "$dir/a/train/samples.jsonl" "$dir/b/train/samples.jsonl" || fail "samples of the resumed run differ"
cmp -s "$dir/a/train/model.safetensors" "$dir/b/train/model.safetensors" || fail "final weights differ"
[ "$(ls "$dir/b/train/checkpoints" | grep -c '^step-')" -le 2 ] || fail "more than keep_checkpoints=2 checkpoints kept"

# A finished run reruns as a no-op; a changed option (here from --set) is refused, naming the key.
before=$(md5sum < "$dir/a/train/metrics.jsonl")
"$grpo" run "$dir/exp.lua" --out "$dir/a" 2> "$dir/log_a2" || { cat "$dir/log_a2"; fail "rerun of a finished run failed"; }
grep -q '\[train\] finished in an earlier run' "$dir/log_a2" || fail "finished train stage was redone"
[ "$before" = "$(md5sum < "$dir/a/train/metrics.jsonl")" ] || fail "rerun of a finished run changed its metrics"
if "$grpo" run "$dir/exp.lua" --out "$dir/a" --set train.lr=0.002 --set train.group_size=8 2> "$dir/err"; then
  fail "changed options accepted"
fi
grep -q 'lr: 0.001 -> 0.002' "$dir/err" || fail "refusal does not name lr: $(cat "$dir/err")"
grep -q 'group_size: 4 -> 8' "$dir/err" || fail "refusal does not name group_size: $(cat "$dir/err")"
echo ok
