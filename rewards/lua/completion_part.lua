-- Scores one part of an R1-style completion with another rule: the summary after the
-- end-of-thinking marker (DeepSeek-R1 §2.3.4: helpfulness judged on the summary only), or the
-- reasoning before it.
--
-- The wrapped rule sees the sample with `completion` replaced by the part (verify.summary or
-- verify.reasoning), and three more fields: `full_completion`, `reasoning` and `summary`. Every other
-- field reads through to the sample. Without the marker the summary is "" (the answer never left its
-- chain of thought); options.missing, when given, is returned instead of calling the rule then.
--
-- Usage: rule = require("completion_part"){ part = "summary", marker = "</t>", rule = helpfulness }
return function(options)
  options = options or {}
  local part = options.part or "summary"
  local marker = options.marker or "</think>"
  local rule = options.rule
  if part ~= "summary" and part ~= "reasoning" then
    error("completion_part: part must be \"summary\" or \"reasoning\", got " .. tostring(part))
  end
  if type(rule) ~= "function" then error("completion_part: options.rule must be a function of the sample") end

  return function(sample)
    local reasoning, summary, found = verify.split_reasoning(sample.completion, marker)
    if not found and options.missing ~= nil then return options.missing end
    local view = setmetatable({
      completion = part == "summary" and summary or reasoning,
      full_completion = sample.completion,
      reasoning = reasoning,
      summary = summary,
    }, { __index = sample })
    return rule(view)
  end
end
