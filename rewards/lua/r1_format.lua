-- R1 format reward (DeepSeek-R1-Zero's format reward).
--
--   reward = 1  if the completion is  <think> T </think> <answer> A </answer>  and nothing after,
--               with T and A not blank, each tag exactly once (whitespace allowed between parts);
--            0  otherwise.
--
-- Unlike open-r1's regex, text after </answer> and a second <answer> block both score 0.
-- Options: think_prefilled = true when the chat template already ends the prompt with "<think>"
-- (DeepSeek-R1-Distill, Qwen3): the completion then starts inside the think block.
--
-- Usage: rule = require("r1_format")()  or  require("r1_format"){ think_prefilled = true }
return function(options)
  options = options or {}
  local prefilled = options.think_prefilled and true or false

  local function count(text, tag)
    local n = 0
    for _ in text:gmatch(tag, 1) do n = n + 1 end
    return n
  end

  return function(sample)
    local text = sample.completion
    if prefilled then text = "<think>" .. text end
    if count(text, "<think>") ~= 1 or count(text, "</think>") ~= 1
        or count(text, "<answer>") ~= 1 or count(text, "</answer>") ~= 1 then
      return 0
    end
    local think, answer = text:match("^%s*<think>(.-)</think>%s*<answer>(.-)</answer>%s*$")
    if not think or not think:find("%S") or not answer:find("%S") then return 0 end
    return 1
  end
end
