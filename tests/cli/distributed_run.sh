#!/usr/bin/env bash
# Data-parallel `grpo run` over Gloo on loopback: --nproc 2, and two ranks started by hand with Slurm's or
# Open MPI's variables, train exactly as one process does (same rewards, losses, final weights); a rank
# that exits stops the --nproc run, naming it; a rank that hangs makes the other fail at --dist-timeout.
set -euo pipefail
grpo=$1
dir=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$dir"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

cat > "$dir/rules.lua" <<'LUA'
return { { name = "accuracy", rule = function(s) return s.completion:sub(1, 1) == "a" and 1 or 0 end } }
LUA
cat > "$dir/exp.lua" <<'LUA'
local data = {}
for _, q in ipairs { "bc", "de", "fg", "hb", "ab", "ch" } do data[#data + 1] = { question = q } end
local m = grpo.init { config = { model_type = "qwen2", hidden_size = 32, intermediate_size = 64, num_hidden_layers = 2,
                                 num_attention_heads = 4, num_key_value_heads = 2 },
                      tokenizer = { chars = "abcdefgh" }, seed = 1 }
grpo.train { model = m, data = data, prompt = "{question}", rules = grpo.script_dir .. "/rules.lua", steps = 3,
             prompts_per_step = 4, group_size = 4, max_new_tokens = 3, lr = 1e-2, micro_batch_size = 3,
             sample_every = 1, seed = 5 }
LUA
# Log-probs of a fixed sequence under a model: a fingerprint of its weights.
fingerprint() { "$grpo" logprobs --model "$1" --ids 1,3,4,5,6,3,7,8,9,3; }
compare_runs() {  # one-process run dir, data-parallel run dir, label
  python3 - "$1" "$2" "$3" "$(fingerprint "$1/init")" "$(fingerprint "$1/train")" "$(fingerprint "$2/train")" <<'PY'
import json, sys
one, two, label, init, fp1, fp2 = sys.argv[1:]
def lines(path): return [json.loads(l) for l in open(path)]
m1, m2 = lines(one + "/train/metrics.jsonl"), lines(two + "/train/metrics.jsonl")
assert len(m1) == len(m2) == 3, f"{label}: expected 3 metric lines, got {len(m1)} and {len(m2)}"
for s, (a, b) in enumerate(zip(m1, m2)):
    for k in ("reward", "reward_std", "completion_length/mean", "groups/sampled", "train/tokens"):
        assert a[k] == b[k], f"{label}: step {s} {k}: {a[k]} vs {b[k]}"
    for k in ("pg_loss", "grad_norm", "entropy"):
        assert abs(a[k] - b[k]) <= 1e-4 * max(1.0, abs(a[k])), f"{label}: step {s} {k}: {a[k]} vs {b[k]}"
s1, s2 = lines(one + "/train/samples.jsonl"), lines(two + "/train/samples.jsonl")
assert [(x["prompt"], x["completion"]) for x in s1] == [(x["prompt"], x["completion"]) for x in s2], f"{label}: samples differ"
def values(text):
    j = json.loads(text)
    return j["logprobs"] if isinstance(j, dict) else j
i, a, b = values(init), values(fp1), values(fp2)
moved = max(abs(x - y) for x, y in zip(a, i))
diff = max(abs(x - y) for x, y in zip(a, b))
assert moved > 1e-3, f"{label}: training did not move the weights ({moved})"
assert diff < 1e-4, f"{label}: trained models differ: log-probs up to {diff} apart"
print(f"{label}: same rewards and samples, trained log-probs within {diff:.2e} (training moved them {moved:.3f})")
PY
}

"$grpo" run "$dir/exp.lua" --out "$dir/one" 2> "$dir/one.log" || { cat "$dir/one.log"; fail "one-process run failed"; }

# --nproc 2: the launcher starts and labels the ranks; only rank 0 writes.
"$grpo" run "$dir/exp.lua" --out "$dir/two" --nproc 2 > "$dir/two.out" 2> "$dir/two.log" || { cat "$dir/two.log"; fail "--nproc 2 failed"; }
grep -q '^\[rank 0\] \[train\]' "$dir/two.log" || fail "no [rank 0] lines: $(head -5 "$dir/two.log")"
grep -q '^\[rank 1\] ' "$dir/two.log" || fail "no [rank 1] lines"
[ -e "$dir/two/.ranks/1/stages" ] || fail "rank 1 kept no stage records of its own"
compare_runs "$dir/one" "$dir/two" "--nproc 2"

# Two ranks started by hand, as srun and mpirun start them.
launch_pair() {  # out-dir, variable names for rank / size / local rank
  local out=$1 port
  port=$(free_port)
  for r in 0 1; do
    env -u RANK -u WORLD_SIZE -u LOCAL_RANK "$2=$r" "$3=2" "$4=$r" MASTER_ADDR=127.0.0.1 MASTER_PORT="$port" OMP_NUM_THREADS=1 \
      "$grpo" run "$dir/exp.lua" --out "$out" --dist-timeout 60 2> "$out.rank$r.log" &
    pids+=($!)
  done
  wait "${pids[-2]}" || { cat "$out.rank0.log"; fail "$out: rank 0 failed"; }
  wait "${pids[-1]}" || { cat "$out.rank1.log"; fail "$out: rank 1 failed"; }
}
launch_pair "$dir/slurm" SLURM_PROCID SLURM_NTASKS SLURM_LOCALID
compare_runs "$dir/one" "$dir/slurm" "Slurm variables"
launch_pair "$dir/mpi" OMPI_COMM_WORLD_RANK OMPI_COMM_WORLD_SIZE OMPI_COMM_WORLD_LOCAL_RANK
compare_runs "$dir/one" "$dir/mpi" "Open MPI variables"

# A rank that exits: the launcher stops the other and names the rank.
sed 's/^grpo.train {/if os.getenv("RANK") == "1" then os.exit(3) end\ngrpo.train {/' "$dir/exp.lua" > "$dir/exits.lua"
if "$grpo" run "$dir/exits.lua" --out "$dir/exits" --nproc 2 --dist-timeout 60 > /dev/null 2> "$dir/exits.log"; then
  fail "a run whose rank 1 exited succeeded"
fi
grep -q 'grpo: error: rank 1 of 2 exited with status 3; stopped the other ranks' "$dir/exits.log" || fail "unclear: $(tail -3 "$dir/exits.log")"

# A rank that hangs (torchrun's variables): rank 0 fails at the 3 s timeout with a clear error.
sed 's/^grpo.train {/if os.getenv("RANK") == "1" then while true do end end\ngrpo.train {/' "$dir/exp.lua" > "$dir/hangs.lua"
port=$(free_port)
for r in 1 0; do
  RANK=$r WORLD_SIZE=2 LOCAL_RANK=$r MASTER_ADDR=127.0.0.1 MASTER_PORT=$port OMP_NUM_THREADS=1 \
    timeout 120 "$grpo" run "$dir/hangs.lua" --out "$dir/hangs" --dist-timeout 3 2> "$dir/hangs.rank$r.log" &
  pids+=($!)
done
if wait "${pids[-1]}"; then fail "rank 0 succeeded although rank 1 hung"; fi
grep -q 'distributed: .* failed on rank 0 of 2: another rank exited, crashed or did not reach it within the 3 s timeout' \
  "$dir/hangs.rank0.log" || fail "unclear: $(tail -3 "$dir/hangs.rank0.log")"
kill "${pids[-2]}" 2>/dev/null || true
echo ok
