#!/usr/bin/env bash
# Conversational records end to end: grpo.sft on a mix of `messages`, prompt/completion lists and plain
# text counts as loss tokens exactly the assistant turns (and the text completions), grpo.sample renders
# a multi-turn conversation up to its last user turn with the template's generation prompt, and a
# conversation without a template, for a model without a chat template of its own, is an error naming
# the record and the built-ins.
set -euo pipefail
grpo=$1
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

cat > "$dir/chat.json" <<'JSON'
{"begin": "{bos}",
 "roles": {"system": "<s>{content}\n", "user": "<u>{content}\n", "assistant": "<a>{content}{eos}"},
 "generation_prompt": "<a>",
 "stop": ["<u>"]}
JSON
cat > "$dir/exp.lua" <<'LUA'
local chat = grpo.script_dir .. "/chat.json"
local function msg(role, content) return { role = role, content = content } end
local data = {
  { messages = { msg("system", "ab"), msg("user", "c"), msg("assistant", "d"), msg("user", "e"), msg("assistant", "f") } },
  { messages = { msg("user", "c"), msg("assistant", "d"), msg("user", "e"), msg("assistant", "f") } },
  { prompt = { msg("user", "c") }, completion = "dd" },
  { prompt = "q", completion = "ab" },
}
local m = grpo.init { config = { model_type = "qwen2", hidden_size = 32, intermediate_size = 64, num_hidden_layers = 2,
                                 num_attention_heads = 4, num_key_value_heads = 2 },
                      tokenizer = { chars = "abcdefq\n", specials = { "<pad>", "<bos>", "<eos>", "<s>", "<u>", "<a>" } }, seed = 1 }
local _, sm = grpo.sft { model = m, data = data, template = chat, steps = 1, batch_size = 4 }
print("sft_tokens", sm.completion_tokens)

local path, samples = grpo.sample { model = m, data = { { messages = { msg("user", "c"), msg("assistant", "d"), msg("user", "e") } } },
                                    template = chat, max_new_tokens = 2 }
if samples[1] then print("sample_prompt", (samples[1].prompt:gsub("\n", "|"))) end

local ok, err = pcall(grpo.sample, { model = m, data = { { messages = { msg("user", "c") } } }, out = "no_template.jsonl" })
print("no_template", ok, err)
LUA
"$grpo" run "$dir/exp.lua" --out "$dir/run" > "$dir/out" 2> "$dir/log" || { cat "$dir/log"; fail "run failed"; }
# Loss tokens: d<eos> f<eos> twice (8), d d <eos> (3), and the text record's a b <eos> (3).
grep -q "^sft_tokens	14$" "$dir/out" || fail "SFT loss tokens: $(grep sft_tokens "$dir/out") (expected 14)"
grep -q "^sample_prompt	<bos><u>c|<a>d<eos><u>e|<a>$" "$dir/out" || fail "rendered prompt: $(grep sample_prompt "$dir/out")"
grep -q '^no_template	false	.*grpo.sample: record 1 is a conversation.*needs a chat template: the model has none, so give option "template": a built-in (.*qwen.*)' "$dir/out" \
  || fail "unclear error: $(grep no_template "$dir/out")"
echo ok
