#!/usr/bin/env bash
# grpo init / inspect / logprobs end to end on files written to disk.
set -euo pipefail
grpo=$1
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cat > "$dir/config.json" <<'JSON'
{"model_type": "deepseek_v3", "vocab_size": 64, "hidden_size": 64, "intermediate_size": 128,
 "num_hidden_layers": 2, "num_attention_heads": 4, "q_lora_rank": 32, "kv_lora_rank": 32,
 "qk_nope_head_dim": 16, "qk_rope_head_dim": 8, "v_head_dim": 16, "n_routed_experts": 8,
 "n_shared_experts": 1, "num_experts_per_tok": 2, "moe_intermediate_size": 32, "n_group": 2, "topk_group": 1,
 "first_k_dense_replace": 1}
JSON
fail() { echo "FAIL: $*" >&2; exit 1; }

"$grpo" init --config "$dir/config.json" --out "$dir/ckpt" --seed 3 > /dev/null
[ -f "$dir/ckpt/model.safetensors" ] || fail "init wrote no model.safetensors"

inspect=$("$grpo" inspect "$dir/ckpt")
# 2·(attention + norms) + dense MLP + MoE layer + embeddings + head + final norm, counted by hand:
# attention = q_a 32·64 + 32 + q_b 96·32 + kv_a 40·64 + 32 + kv_b 128·32 + o 64·64 = 15936, norms 128
# dense 3·64·128 = 24576; MoE: gate 8·64 + 8 experts·3·64·32 + shared 3·64·32 = 55808; emb/head 4096 each
echo "$inspect" | grep -q "(120768)" || fail "inspect total parameter count: $inspect"
echo "$inspect" | grep -q "kv cache/token     80 values" || fail "inspect kv cache size: $inspect"

out=$("$grpo" logprobs --model "$dir/ckpt" --ids 5,17,3,9)
n=$(echo "$out" | grep -o '"logprobs":\[[^]]*\]' | tr ',' '\n' | wc -l)
[ "$n" -eq 3 ] || fail "expected 3 log-probs, got: $out"
# Same seed, same weights, same numbers.
"$grpo" init --config "$dir/config.json" --out "$dir/ckpt2" --seed 3 > /dev/null
[ "$("$grpo" logprobs --model "$dir/ckpt2" --ids 5,17,3,9)" = "$out" ] || fail "init is not reproducible for a seed"

if "$grpo" logprobs --model "$dir/ckpt" --ids 5,99 2> "$dir/err"; then fail "out-of-vocabulary id accepted"; fi
grep -q "outside the vocabulary" "$dir/err" || fail "unclear error: $(cat "$dir/err")"
if "$grpo" init --config "$dir/missing.json" --out "$dir/x" 2> "$dir/err"; then fail "missing config accepted"; fi
grep -q "missing.json" "$dir/err" || fail "error does not name the file: $(cat "$dir/err")"
echo "ok"
