-- Math answer reward (R1-Zero accuracy reward for MATH-style problems).
--
--   answer = the last \boxed{...} inside the last <answer>...</answer> block if there is one,
--            else the whole <answer> block, else the last \boxed{...} of the completion;
--   reward = 1 if verify.math_equal(answer, gold) else 0   (0 when no answer was found).
--
-- The gold answer is sample[options.field] (default "answer"); a gold text holding a \boxed{...}
-- (a full reference solution) is reduced to its boxed part. See verify.math_equal for what counts
-- as equal.
--
-- With extract = true the answer is found the way free text writes it (verify.extract_answer): the
-- last \boxed{} (adjacent boxes joined), else the last $...$ / \[...\] / \(...\) span or "final answer
-- is X" / "answer: X" phrase, else the last number; inside the last <answer> block when there is one.
--
-- Usage: rule = require("math_answer")()  or  require("math_answer"){ field = "solution" }
--        require("math_answer"){ extract = true }
return function(options)
  options = options or {}
  local field = options.field or "answer"
  local tolerance = options.tolerance
  local extract = options.extract
  if extract ~= nil and type(extract) ~= "boolean" then
    error("math_answer: option 'extract' must be true or false, got " .. type(extract))
  end

  local function predicted_answer(completion)
    local tagged = verify.extract_tag(completion, "answer")
    if extract then
      if tagged then return verify.extract_answer(tagged) or tagged end
      return verify.extract_answer(completion)
    end
    if tagged then return verify.extract_boxed(tagged) or tagged end
    return verify.extract_boxed(completion)
  end

  return function(sample)
    local gold = sample[field]
    if gold == nil then error("math_answer: the sample has no '" .. field .. "' field") end
    gold = tostring(gold)
    gold = verify.extract_boxed(gold) or gold
    local answer = predicted_answer(sample.completion)
    if not answer then return 0 end
    return verify.math_equal(answer, gold, tolerance) and 1 or 0
  end
end
