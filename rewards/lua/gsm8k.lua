-- GSM8K-style last-number reward.
--
--   predicted = the last number in the completion (after "####" when the completion uses it),
--               thousands separators removed;
--   gold      = the number after "####" in sample[options.field] (default "answer"), or the whole
--               field when it has no "####";
--   reward    = 1 if both are numbers and predicted == gold exactly, else 0.
--
-- Usage: rule = require("gsm8k")()
return function(options)
  options = options or {}
  local field = options.field or "answer"

  local function after_marker(text)
    local marked = text:match("####([^\n]*)$") or text:match("####([^\n]*)")
    return marked or text
  end

  return function(sample)
    local gold_text = sample[field]
    if gold_text == nil then error("gsm8k: the sample has no '" .. field .. "' field") end
    local gold = verify.last_number(after_marker(tostring(gold_text)))
    if gold == nil then error("gsm8k: no number in the gold answer '" .. tostring(gold_text) .. "'") end
    local predicted = verify.last_number(after_marker(sample.completion))
    if predicted == nil then return 0 end
    return predicted == gold and 1 or 0
  end
end
