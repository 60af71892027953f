#!/usr/bin/env bash
# grpo run --save-dtype: the stages' checkpoints are written in the dtype asked for (auto: the dtype the
# model trains in, float32 on the CPU), named in config.json's torch_dtype, with generation_config.json and
# the tokenizer files beside the weights.
set -euo pipefail
grpo=$1
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
cat > "$dir/exp.lua" <<'LUA'
local m = grpo.init { config = { model_type = "qwen2", hidden_size = 16, intermediate_size = 32, num_hidden_layers = 1,
                                 num_attention_heads = 2, num_key_value_heads = 1 },
                      tokenizer = { chars = "ab" }, out = "init" }
grpo.pretrain { model = m, data = { { text = "abab" } }, steps = 1, batch_size = 1, seq_len = 4, out = "pre" }
LUA
# The dtype of every tensor in a safetensors file's header, and config.json's torch_dtype.
dtypes() {
  /usr/bin/python3 - "$1" <<'PY'
import json, struct, sys
d = sys.argv[1]
with open(d + "/model.safetensors", "rb") as f:
    n = struct.unpack("<Q", f.read(8))[0]
    header = json.loads(f.read(n))
print(" ".join(sorted({v["dtype"] for k, v in header.items() if k != "__metadata__"})), json.load(open(d + "/config.json"))["torch_dtype"])
PY
}
"$grpo" run "$dir/exp.lua" --out "$dir/auto" 2> "$dir/log" || { cat "$dir/log"; fail "auto run failed"; }
[ "$(dtypes "$dir/auto/pre")" = "F32 float32" ] || fail "auto on the CPU: $(dtypes "$dir/auto/pre")"
"$grpo" run "$dir/exp.lua" --out "$dir/bf16" --save-dtype bfloat16 2> "$dir/log" || { cat "$dir/log"; fail "bfloat16 run failed"; }
[ "$(dtypes "$dir/bf16/pre")" = "BF16 bfloat16" ] || fail "bfloat16: $(dtypes "$dir/bf16/pre")"
for f in config.json generation_config.json tokenizer.json tokenizer_config.json model.safetensors; do
  [ -f "$dir/bf16/pre/$f" ] || fail "the checkpoint lacks $f"
done
if "$grpo" run "$dir/exp.lua" --out "$dir/x" --save-dtype float16 2> "$dir/err"; then fail "float16 was accepted"; fi
grep -q "save-dtype" "$dir/err" || fail "the error should name --save-dtype: $(cat "$dir/err")"
echo ok
