-- Reward rules of the R1-Zero demo (examples/r1_zero/task.lua): DeepSeek-R1-Zero's two rule rewards,
-- format and accuracy, for the demo's short template. The prompt ends with "<t>", so a completion
-- starts inside the reasoning:   <reasoning></t><a><answer></a>
--
--   format   = 1  if the completion is exactly  R</t><a>A</a>  (then only whitespace), with R and A not
--                 blank and no other tag: no "<" in R or A;
--              0  otherwise.
--   accuracy = 1  if the text of the last <a>...</a> (trimmed) is the record's answer, digit for digit;
--              0  otherwise, and when there is no <a>...</a>.
--   reward   = 0.1 * format + 1.0 * accuracy
--
-- Accuracy does not ask for the format (as in R1-Zero): an answer in its tag after a missing </t>
-- still counts. The answers of this task are integers written without sign or leading zeros, so
-- comparing text is exact; "11.0" or "x=11" is not the answer "11".

local function format(sample)
  local reasoning, answer = sample.completion:match("^([^<]*)</t><a>([^<]*)</a>%s*$")
  if not reasoning or not reasoning:find("%S") or not answer:find("%S") then return 0 end
  return 1
end

local function gold_text(value)
  if value == nil then error("accuracy: the sample has no 'answer' field") end
  if type(value) == "number" then value = math.tointeger(value) or value end  -- JSON 11 may read as 11.0
  return tostring(value):match("^%s*(.-)%s*$")
end

local function accuracy(sample)
  local gold = gold_text(sample.answer)
  local answer = verify.extract_tag(sample.completion, "a")
  return answer == gold and 1 or 0
end

return {
  { name = "format", weight = 0.1, rule = format },
  { name = "accuracy", weight = 1.0, rule = accuracy },
}
