-- Countdown reward, as TinyZero scores it (verl/utils/reward_score/countdown.py).
--
--   equation = the last <answer>...</answer> of the completion;
--   reward   = 0              when there is no answer block,
--              format_score   (0.1) when the equation is not valid arithmetic, does not use each
--                             given number exactly once, or does not reach the target,
--              score          (1.0) when it evaluates exactly to sample.target.
--
-- The sample needs `target` (a number) and `numbers` (a list). The equation is evaluated by
-- verify.eval_arith in exact rationals (+ - * / parentheses only): "44 ** 19 ** 35" is rejected, not
-- computed. Unlike TinyZero, the answer need not be on the completion's last line.
--
-- Usage: rule = require("countdown")()  or  require("countdown"){ format_score = 0, score = 1 }
return function(options)
  options = options or {}
  local format_score = options.format_score or 0.1
  local score = options.score or 1.0

  local function sorted(list)
    local copy = {}
    for i, v in ipairs(list) do copy[i] = math.tointeger(v) or v end
    table.sort(copy)
    return copy
  end

  local function uses_each_number_once(equation, numbers)
    local used = {}
    for digits in equation:gmatch("%d+") do used[#used + 1] = math.tointeger(tonumber(digits)) end
    local a, b = sorted(used), sorted(numbers)
    if #a ~= #b then return false end
    for i = 1, #a do
      if a[i] ~= b[i] then return false end
    end
    return true
  end

  return function(sample)
    if type(sample.numbers) ~= "table" or type(sample.target) ~= "number" then
      error("countdown: the sample needs 'numbers' (a list) and 'target' (a number)")
    end
    local equation = verify.extract_tag(sample.completion, "answer")
    if not equation then return 0 end
    if not equation:match("^[%d%s%+%-%*/%(%)%.]+$") then return format_score end
    if not uses_each_number_once(equation, sample.numbers) then return format_score end
    local value = verify.eval_arith(equation)
    if value == nil or value ~= sample.target then return format_score end
    return score
  end
end
