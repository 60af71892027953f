#!/usr/bin/env bash
# examples/distill/distill.lua with tiny step counts (--set): the teacher, the student base and the five
# arms each hand the next their output, the held-out table and the curves print, every arm leaves a model
# (trace SFT's only when the barely pretrained teacher has a right answer to keep; else the arm is the base).
set -euo pipefail
grpo=$1
root=$(cd "$(dirname "$0")/../.." && pwd)
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
"$grpo" run "$root/examples/distill/distill.lua" --out "$dir/run" --set pretrain.steps=20 --set train.steps=2 \
  --set distill.steps=2 --set distill.n=1 --set eval.n=2 > "$dir/out" 2> "$dir/log" || { cat "$dir/log"; fail "run failed"; }
for model in teacher student_base student_grpo student_logits student_on_policy; do
  [ -f "$dir/run/$model/model.safetensors" ] || fail "no $model checkpoint"
done
for row in "teacher (MoE)" "student base" "+ GRPO" "+ trace SFT" "+ logit KD" "+ on-policy"; do
  grep -q "^$row " "$dir/out" || { cat "$dir/out"; fail "the table has no row $row"; }
done
grep -q "best distilled student" "$dir/out" || fail "no summary line"
grep -q "step   2  kl" "$dir/out" || { cat "$dir/out"; fail "no logit-KD curve"; }
grep -q "step   2  reverse kl" "$dir/out" || { cat "$dir/out"; fail "no on-policy curve"; }
cat "$dir/out"
echo ok
