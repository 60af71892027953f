#!/usr/bin/env bash
# grpo report: charts of a small run directory's metrics as SVG files and one self-contained HTML page.
set -euo pipefail
grpo=$1
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

mkdir -p "$dir/run/train" "$dir/run/sft"
cat > "$dir/run/train/metrics.jsonl" <<'JSONL'
{"step": 0, "reward": 0.10, "accuracy": 0.00, "kl": 0.000, "entropy": 1.9, "completion_length/mean": 40, "grad_norm": 0.5}
{"step": 1, "reward": 0.30, "accuracy": 0.25, "kl": 0.004, "entropy": 1.7, "completion_length/mean": 35, "grad_norm": 0.4}
{"step": 2, "reward": 0.20, "accuracy": 0.25, "kl": 0.006, "entropy": 1.6, "completion_length/mean": 30, "grad_norm": 0.6}
{"step": 3, "reward": 0.70, "accuracy": 0.50, "kl": 0.010, "entropy": 1.4, "completion_length/mean": 28, "grad_norm": 0.3}
JSONL
printf '{"step": 0, "loss": 2.0}\n{"step": 1, "loss": 1.0}\n' > "$dir/run/sft/metrics.jsonl"

"$grpo" report "$dir/run" > "$dir/out" 2>&1 || { cat "$dir/out"; fail "report failed"; }
grep -q "6 charts" "$dir/out" || fail "unexpected output: $(cat "$dir/out")"
html=$dir/run/report/report.html
[ -f "$html" ] || fail "no report.html"
for f in train_reward train_accuracy train_kl train_entropy train_completion_length_mean sft_loss; do
  [ -f "$dir/run/report/$f.svg" ] || fail "missing $f.svg"
done
[ ! -f "$dir/run/report/train_grad_norm.svg" ] || fail "grad_norm is not a report metric"
[ "$(grep -c '<svg' "$html")" -eq 6 ] || fail "expected 6 inline charts"
if grep -q '<script\|src=\|href=' "$html"; then fail "the page must be self-contained"; fi

# The reward chart's points: x over 4 steps across 64..464, y over 0.1..0.7 across 204..32.
points=$(grep -o 'class="data"[^>]*points="[^"]*"' "$dir/run/report/train_reward.svg" | sed 's/.*points="//; s/"$//')
[ "$points" = "64.00,204.00 197.33,146.67 330.67,175.33 464.00,32.00" ] || fail "reward points: $points"

# A well-formed SVG by an XML parser, where one is installed.
if command -v xmllint > /dev/null; then xmllint --noout "$dir/run/report/train_reward.svg" || fail "xmllint rejects the SVG"; fi

# --out elsewhere; errors name the problem.
"$grpo" report "$dir/run" --out "$dir/elsewhere" > /dev/null || fail "report --out failed"
[ -f "$dir/elsewhere/report.html" ] || fail "--out ignored"
if "$grpo" report "$dir/missing" 2> "$dir/err"; then fail "a missing run directory was accepted"; fi
grep -q "not a run directory" "$dir/err" || fail "unclear error: $(cat "$dir/err")"
echo '{"step": 0, "loss": ' > "$dir/run/sft/metrics.jsonl"
if "$grpo" report "$dir/run" 2> "$dir/err"; then fail "a malformed metrics line was accepted"; fi
grep -q "sft/metrics.jsonl:1: invalid JSON" "$dir/err" || fail "unclear error: $(cat "$dir/err")"
echo ok
