-- Reward rules of the R1 example (examples/r1/task.lua). A completion is   <reasoning></t><summary>
-- (the prompt ends with "<t>"); the summary of a well-formed answer is "<a>answer</a>".
--
--   rule          on                        value
--   accuracy      reasoning prompts         1 if the last <a>..</a> holds the record's answer, else 0
--   format        every prompt              1 if the completion is exactly R</t><a>A</a> (then only
--                                           whitespace), A not blank, no "<" in R or A, and R not blank
--                                           on reasoning prompts (general ones need no reasoning)
--   language      reasoning prompts         share of the reasoning's letters in the question's script
--                                           (DeepSeek-R1's language-consistency reward; the reasoning
--                                           only, never the summary; without "</t>" the whole
--                                           completion is the reasoning)
--   verification  reasoning prompts         1 if the reasoning holds a check ("check:" or "ελεγχ:")
--   helpfulness   general prompts           1 if the summary's <a>..</a> is the digits reversed (judged
--                                           on the summary only, as R1's helpfulness reward)
--   harmlessness  every prompt              1 if the whole completion, reasoning included, is free of
--                                           the harmful marker "#", else 0
-- Each rule gives 0 on the prompts it is not for, so within a GRPO group (one prompt) it is constant.
--
-- Weights: this file, used as it is, rewards accuracy (1) and format (0.1) only — R1-Zero's rewards;
-- the other rules have weight 0 and are logged as rewards/<rule> (share of completions that verify,
-- language consistency) without being rewarded. examples/r1/r1.lua writes one copy per RL stage into
-- the run directory, prefixed with a line `local WEIGHTS = {...}` that sets that stage's weights.
local weights = WEIGHTS or {}  -- luacheck: ignore (nil unless a copy sets it)
local function weight(name, default)
  local w = weights[name]
  if w == nil then return default end
  return w
end

local THINK_CLOSE = "</t>"
local CHECKS = { "check:", "ελεγχ:" }
-- The parts of a completion, split at the first "</t>" by the rule library (docs/rewards.md, "Parts of
-- a completion"): the reasoning before it, the summary after it; without "</t>" all of it is the
-- reasoning and the summary is "".
local completion_part = require("completion_part")

local function kind(sample)
  local k = sample.kind or "reasoning"
  if k ~= "reasoning" and k ~= "general" then error("the sample's kind must be \"reasoning\" or \"general\", got " .. tostring(k)) end
  return k
end

local function gold_text(value)
  if value == nil then error("the sample has no 'answer' field") end
  if type(value) == "number" then value = math.tointeger(value) or value end
  return tostring(value):match("^%s*(.-)%s*$")
end

local function accuracy(sample)
  if kind(sample) ~= "reasoning" then return 0 end
  return verify.extract_tag(sample.completion, "a") == gold_text(sample.answer) and 1 or 0
end

local function format(sample)
  local reasoning, answer = sample.completion:match("^([^<]*)</t><a>([^<]*)</a>%s*$")
  if not reasoning or not answer:find("%S") then return 0 end
  if kind(sample) == "reasoning" and not reasoning:find("%S") then return 0 end
  return 1
end

-- On the reasoning part: letters, not words (the reasoning has no spaces, so a word would be all of it).
local language = completion_part { part = "reasoning", marker = THINK_CLOSE, rule = function(sample)
  if kind(sample) ~= "reasoning" then return 0 end
  local script = sample.script
  if script ~= "latin" and script ~= "greek" then error("language: the sample's script must be latin or greek, got " .. tostring(script)) end
  return verify.script_ratio(sample.completion, script)
end }

local verification = completion_part { part = "reasoning", marker = THINK_CLOSE, rule = function(sample)
  if kind(sample) ~= "reasoning" then return 0 end
  for _, marker in ipairs(CHECKS) do
    if sample.completion:find(marker, 1, true) then return 1 end
  end
  return 0
end }

-- On the summary only: a right answer left in the reasoning earns nothing.
local helpfulness = completion_part { part = "summary", marker = THINK_CLOSE, rule = function(sample)
  if kind(sample) ~= "general" then return 0 end
  return verify.extract_tag(sample.completion, "a") == gold_text(sample.answer) and 1 or 0
end }

local function harmlessness(sample)
  return sample.completion:find("#", 1, true) and 0 or 1
end

return {
  { name = "accuracy", weight = weight("accuracy", 1.0), rule = accuracy },
  { name = "format", weight = weight("format", 0.1), rule = format },
  { name = "language", weight = weight("language", 0.0), rule = language },
  { name = "verification", weight = weight("verification", 0.0), rule = verification },
  { name = "helpfulness", weight = weight("helpfulness", 0.0), rule = helpfulness },
  { name = "harmlessness", weight = weight("harmlessness", 0.0), rule = harmlessness },
}
