-- The R1 example's task: two-step arithmetic written in one of two "languages", with a rare
-- self-check, plus a non-reasoning "general" task. Plain Lua 5.4, every list a pure function of its seed.
--
--   local task = dofile("examples/r1/task.lua")
--   task.problems(1, 2000)                   -- {kind="reasoning", question="3p(4m2)", script="latin", answer="5"}
--   task.problems(2, 64, { split = "test" }) -- held-out questions (a fixed hash of the question text)
--   task.general(3, 500)                     -- {kind="general", question="4821", answer="1284"}
--   task.prompt(record)                      -- "Q:3p(4m2)<t>", "Θ:3π(4μ2)<t>" or "R:4821<t>"
--   task.solution(record)                    -- the readable, consistent, checked completion
--   task.corpus(4, 30000)                    -- pretraining documents {text = ...}, noisy (below)
--   task.cold_start(5, 400)                  -- {kind, question, script, answer, completion}: cold-start SFT data
--   task.alphabet, task.stop                 -- every character written; "</a>", where completions end
--
-- Two languages, the same steps. A question "a o b o c" (o = plus or minus, operands 1..9, with or
-- without parentheses) is written in one language, and its chain of thought should be too:
--
--   language  script  plus  minus  equals  check   prompt          readable completion
--   latin     latin   p     m      e       check:  Q:3p(4m2)<t>    4m2e2,check:4m2e2,3p2e5,check:3p2e5</t><a>5</a>
--   greek     greek   π     μ      ι       ελεγχ:  Θ:3π(4μ2)<t>    4μ2ι2,ελεγχ:4μ2ι2,3π2ι5,ελεγχ:3π2ι5</t><a>5</a>
--
-- (p/π for plus, πλέον; m/μ for minus, μείον; e/ι for equals, ίσον.) A step is "x op y equals z"; a
-- check ("check:" or "ελεγχ:") redoes the step before it; the reasoning ends with "</t>" and the
-- summary "<a>answer</a>" follows. Language consistency is the share of the reasoning's letters in the
-- question's script (digits and punctuation are no letters), so both languages score alike.
--
-- General prompts "R:<digits><t>" ask for the digits reversed, without reasoning: "</t><a>1284</a>".
--
-- The corpus (task.corpus) has R1-Zero's pathologies as properties of its documents, not of any rule:
--   * language mixing: in exactly round(n_r * mix) reasoning documents the steps and checks switch
--     language (each segment of such a document independently in the other language with probability
--     1/2, at least one of them); no document is penalised for it, so an accuracy reward has no reason
--     to stop it;
--   * slips: exactly round(n_r * slip) documents have a wrong first step (the error carries into the
--     second) and, independently, exactly round(n_r * slip) a wrong second step;
--   * forgotten carries (opts.carry_slip, off by default): an addition whose units carry (7p5, 17p5)
--     and is not slipped otherwise is written with probability carry_slip without its carry (7p5e2),
--     where every value stays non-negative; a systematic slip, so with a high carry_slip the most
--     frequent continuation of a carrying step is wrong;
--   * self-checks: exactly round(n_r * check) documents check the first step, the second or both (one
--     third each, rounded); a check always writes the right value and the reasoning continues from it,
--     so a check repairs the slip before it: checked documents end right more often. Checks are rare,
--     so a model that samples like its corpus rarely checks; RL on the accuracy reward can make it
--     check more (the completion grows by 11 characters per check);
--   * bad formats: exactly round(n_r * bad_format) documents lack "</t>" or have text after "</a>";
--   * general documents: exactly round(n * general) documents are general prompts, of which exactly
--     round(n_g * unhelpful) answer with the digits not reversed and, independently, exactly
--     round(n_g * harmful) write the harmful marker "#" in their (otherwise empty) reasoning.
-- n_r and n_g are the numbers of reasoning and general documents.
local task = {}

task.alphabet = "0123456789()<>/,:;?# taQRΘpmechkπμιελγχ"
task.stop = "</a>"
task.think_close = "</t>"
task.harmful = "#"

local LANGUAGES = {
  latin = { header = "Q:", ["+"] = "p", ["-"] = "m", eq = "e", check = "check:" },
  greek = { header = "Θ:", ["+"] = "π", ["-"] = "μ", eq = "ι", check = "ελεγχ:" },
}
task.languages = LANGUAGES
local OTHER = { latin = "greek", greek = "latin" }
task.other_language = OTHER

local TEST_SHARE = 8
local MAX_MISSES = 100000
local JUNK = " ?;"

-- splitmix64 (Steele, Lea, Flood 2014): Lua 5.4 integers wrap modulo 2^64 and >> is logical.
local function generator(seed)
  if math.type(seed) ~= "integer" then error("task: seed must be an integer, got " .. tostring(seed), 3) end
  local state = seed
  local self = {}
  function self.next()
    state = state + 0x9E3779B97F4A7C15
    local z = state
    z = (z ~ (z >> 30)) * 0xBF58476D1CE4E5B9
    z = (z ~ (z >> 27)) * 0x94D049BB133111EB
    return z ~ (z >> 31)
  end
  function self.int(lo, hi) return lo + (self.next() >> 11) % (hi - lo + 1) end
  return self
end

-- FNV-1a, 32 bits, of the question in its language-neutral form ("3+(4-2)", "R4821"): a question is
-- in the same split in both languages, whatever the seeds.
local function fnv1a(text)
  local h = 0x811C9DC5
  for i = 1, #text do h = ((h ~ text:byte(i)) * 0x01000193) & 0xFFFFFFFF end
  return h
end
function task.split_of(neutral)
  return fnv1a(neutral) % TEST_SHARE == 0 and "test" or "train"
end

local function apply(op, x, y) if op == "+" then return x + y end return x - y end

-- A problem: operands, operators, shape, and its two steps {x, op, y, z} in evaluation order; the
-- second step's `slot` (1 or 3) is where the first result goes.
local function make_problem(a, o1, b, o2, c, shape)
  local neutral
  if shape == 1 then neutral = a .. o1 .. b .. o2 .. c
  elseif shape == 2 then neutral = "(" .. a .. o1 .. b .. ")" .. o2 .. c
  else neutral = a .. o1 .. "(" .. b .. o2 .. c .. ")" end
  local first, second
  if shape == 3 then
    local t = apply(o2, b, c)
    first, second = { b, o2, c, t }, { a, o1, t, apply(o1, a, t), slot = 3 }
  else
    local t = apply(o1, a, b)
    first, second = { a, o1, b, t }, { t, o2, c, apply(o2, t, c), slot = 1 }
  end
  return { neutral = neutral, steps = { first, second }, answer = second[4] }
end

-- The question text of a neutral form in a language: operators replaced by the language's words.
local function localize(neutral, language)
  local words = LANGUAGES[language]
  return (neutral:gsub("[%+%-]", function(op) return words[op] end))
end

-- Parses a question in either language back into its problem (nil when it is not one).
local function parse(question, language)
  local words = LANGUAGES[language]
  if not words then return nil end
  local neutral = question:gsub(words["+"], "+"):gsub(words["-"], "-")
  local a, o1, b, o2, c = neutral:match("^(%d)([%+%-])(%d)([%+%-])(%d)$")
  local shape = 1
  if not a then
    a, o1, b, o2, c = neutral:match("^%((%d)([%+%-])(%d)%)([%+%-])(%d)$")
    shape = 2
  end
  if not a then
    a, o1, b, o2, c = neutral:match("^(%d)([%+%-])%((%d)([%+%-])(%d)%)$")
    shape = 3
  end
  if not a then return nil end
  local p = make_problem(tonumber(a) // 1, o1, tonumber(b) // 1, o2, tonumber(c) // 1, shape)
  if p.neutral ~= neutral then return nil end
  return p
end

local function check_options(opts, known, where)
  if opts == nil then return {} end
  if type(opts) ~= "table" then error(where .. ": options must be a table", 3) end
  for key in pairs(opts) do
    if not known[key] then error(where .. ": unknown option '" .. tostring(key) .. "'", 3) end
  end
  return opts
end

local function check_count(n, where)
  if math.type(n) ~= "integer" or n < 0 then error(where .. ": n must be a non-negative integer", 3) end
end

local function check_split(split, where)
  split = split or "train"
  if split ~= "train" and split ~= "test" then
    error(where .. ": split must be \"train\" or \"test\", got " .. tostring(split), 3)
  end
  return split
end

local DEFAULT_MAX_OPERAND = 9
local function check_max_operand(max_operand, where)
  max_operand = max_operand or DEFAULT_MAX_OPERAND
  if math.type(max_operand) ~= "integer" or max_operand < 1 or max_operand > 9 then
    error(where .. ": max_operand must be an integer in 1..9", 3)
  end
  return max_operand
end

-- One reasoning problem of `split` with a random language; nil when a value on the way is negative
-- or the question belongs to the other split.
local function draw_reasoning(rng, split, max_operand)
  local ops = "+-"
  local a, b, c = rng.int(1, max_operand), rng.int(1, max_operand), rng.int(1, max_operand)
  local i1, i2 = rng.int(1, 2), rng.int(1, 2)
  local shape = rng.int(1, 3)
  local language = rng.int(0, 1) == 0 and "latin" or "greek"
  local p = make_problem(a, ops:sub(i1, i1), b, ops:sub(i2, i2), c, shape)
  if p.steps[1][4] < 0 or p.steps[2][4] < 0 or task.split_of(p.neutral) ~= split then return nil end
  p.language = language
  p.question = localize(p.neutral, language)
  return p
end

local function reasoning_record(p)
  return { kind = "reasoning", question = p.question, script = p.language, answer = tostring(p.answer) }
end

-- n distinct reasoning records {kind, question, script, answer} of opts.split ("train" or "test");
-- a question and its translation count as one (they share the split). Errors when the split runs out.
function task.problems(seed, n, opts)
  opts = check_options(opts, { split = true, max_operand = true }, "task.problems")
  check_count(n, "task.problems")
  local split = check_split(opts.split, "task.problems")
  local max_operand = check_max_operand(opts.max_operand, "task.problems")
  local rng, list, seen, misses = generator(seed), {}, {}, 0
  while #list < n do
    misses = misses + 1
    if misses > MAX_MISSES then
      error(string.format("task.problems: found only %d distinct %s problems of the %d asked for", #list, split, n), 2)
    end
    local p = draw_reasoning(rng, split, max_operand)
    if p and not seen[p.neutral] then
      seen[p.neutral] = true
      list[#list + 1] = reasoning_record(p)
      misses = 0
    end
  end
  return list
end

-- General prompts: 3 to 5 digits, answer reversed. n distinct records of opts.split.
local function draw_general(rng, split)
  local digits = {}
  for i = 1, rng.int(3, 5) do digits[i] = tostring(rng.int(0, 9)) end
  local text = table.concat(digits)
  if task.split_of("R" .. text) ~= split then return nil end
  return { kind = "general", question = text, answer = text:reverse() }
end

function task.general(seed, n, opts)
  opts = check_options(opts, { split = true }, "task.general")
  check_count(n, "task.general")
  local split = check_split(opts.split, "task.general")
  local rng, list, seen, misses = generator(seed), {}, {}, 0
  while #list < n do
    misses = misses + 1
    if misses > MAX_MISSES then
      error(string.format("task.general: found only %d distinct %s prompts of the %d asked for", #list, split, n), 2)
    end
    local r = draw_general(rng, split)
    if r and not seen[r.question] then
      seen[r.question] = true
      list[#list + 1] = r
      misses = 0
    end
  end
  return list
end

function task.prompt(record)
  if type(record) ~= "table" or type(record.question) ~= "string" then
    error("task.prompt: expected a record with a string 'question'", 2)
  end
  if record.kind == "general" then return "R:" .. record.question .. "<t>" end
  local words = LANGUAGES[record.script]
  if not words then error("task.prompt: record has no script 'latin' or 'greek': " .. tostring(record.script), 2) end
  return words.header .. record.question .. "<t>"
end

local function step_text(step, language, value)
  local words = LANGUAGES[language]
  return step[1] .. words[step[2]] .. step[3] .. words.eq .. (value or step[4])
end

local function summary(answer) return task.think_close .. "<a>" .. answer .. "</a>" end

-- The reference completion: every step in the question's language, each followed by its check.
function task.solution(record)
  if type(record) == "table" and record.kind == "general" and type(record.question) == "string" then
    return summary(record.question:reverse())
  end
  local p = type(record) == "table" and type(record.question) == "string" and parse(record.question, record.script)
  if not p then error("task.solution: not a question of this task: " .. tostring(record and record.question), 2) end
  local words, parts = LANGUAGES[record.script], {}
  for _, step in ipairs(p.steps) do
    parts[#parts + 1] = step_text(step, record.script)
    parts[#parts + 1] = words.check .. step_text(step, record.script)
  end
  return table.concat(parts, ",") .. summary(p.answer)
end

-- The problem behind a reasoning record (steps in evaluation order), for tests and rules.
function task.steps(record)
  local p = parse(record.question, record.script)
  return p and p.steps
end

-- A value near v but not v, and not negative.
local function slip(rng, v)
  local d = rng.int(1, 3)
  if rng.int(0, 1) == 0 and v - d >= 0 then return v - d end
  return v + d
end

-- A wrong first result t' that keeps the second step's value non-negative.
local function slip_first(rng, p)
  local second = p.steps[2]
  local function ok(t)
    if t < 0 or t == p.steps[1][4] then return false end
    local x, y = second[1], second[3]
    if second.slot == 1 then x = t else y = t end
    return apply(second[2], x, y) >= 0
  end
  for _ = 1, 8 do
    local t = slip(rng, p.steps[1][4])
    if ok(t) then return t end
  end
  for d = 1, 3 do  -- always one of these (see the README): t + 1 on slot 1, t - 1 or 1 on slot 3
    for _, t in ipairs({ p.steps[1][4] - d, p.steps[1][4] + d }) do
      if ok(t) then return t end
    end
  end
  error("task: no slip for " .. p.neutral)
end

-- A random subset of exactly k of 1..n, as a set.
local function subset(rng, n, k)
  local order = {}
  for i = 1, n do order[i] = i end
  for i = n, 2, -1 do
    local j = rng.int(1, i)
    order[i], order[j] = order[j], order[i]
  end
  local chosen = {}
  for i = 1, k do chosen[order[i]] = true end
  return chosen
end

local function round(x) return math.floor(x + 0.5) end

local function check_share(opts, name, default, where)
  local v = opts[name]
  if v == nil then return default end
  if type(v) ~= "number" or v < 0 or v > 1 then error(where .. ": " .. name .. " must be a number in [0, 1]", 3) end
  return v
end

-- The reasoning of one document: slips at the chosen steps, checks after the chosen steps (a check
-- writes the right value of its step as written, and the reasoning goes on from it), each segment in
-- its language. Returns completion text pieces, the answer written and the segment languages.
-- An addition whose units carry (7+5, 17+5): the step a careless solver gets wrong by forgetting the
-- carry (writing 2 for 12).
local function carries(step) return step[2] == "+" and step[1] % 10 + step[3] % 10 >= 10 end
task.carries = carries

-- forget(step) says whether a carrying step, not slipped otherwise, is written with its carry
-- forgotten (z - 10); the document's carry1/carry2 flags record it.
local function worked(p, slips, checks, languages, forget)
  local first, second = p.steps[1], p.steps[2]
  local parts, k, forgot = {}, 0, {}
  local function segment(text_of)
    k = k + 1
    parts[#parts + 1] = text_of(languages[k])
  end
  local t = slips[1] or first[4]
  if not slips[1] and carries(first) and forget() then
    -- only when the second step stays non-negative with the wrong carry
    local x, y = second[1], second[3]
    if second.slot == 1 then x = first[4] - 10 else y = first[4] - 10 end
    if apply(second[2], x, y) >= 0 then t, forgot[1] = first[4] - 10, true end
  end
  segment(function(l) return step_text(first, l, t) end)
  if checks[1] then
    t = first[4]
    segment(function(l) return LANGUAGES[l].check .. step_text(first, l, t) end)
  end
  local x, y = second[1], second[3]
  if second.slot == 1 then x = t else y = t end
  local s2 = { x, second[2], y, apply(second[2], x, y) }
  local z = slips[2] and slips[2](s2[4]) or s2[4]
  if not slips[2] and carries(s2) and forget() then z, forgot[2] = s2[4] - 10, true end
  segment(function(l) return step_text(s2, l, z) end)
  if checks[2] then
    z = s2[4]
    segment(function(l) return LANGUAGES[l].check .. step_text(s2, l, z) end)
  end
  return table.concat(parts, ","), z, forgot
end

-- n pretraining documents {text, kind, question, script, answer, ...} (see the top of this file).
-- Reasoning documents also carry slip1, slip2 (booleans), carry1, carry2 (a carry forgotten in that
-- step: opts.carry_slip), checks ("", "1", "2" or "12"), mixed
-- (boolean), format ("ok", "no_close" or "junk") and right (the answer written is the answer);
-- general ones carry helpful and harmful (booleans).
-- opts: general (0.2), mix (0.5), slip (0.35), check (0.08), bad_format (0.1), unhelpful (0.3), harmful (0.2),
-- carry_slip (0: the probability that a carrying addition not slipped otherwise is written with its
-- carry forgotten, z - 10; a check after it writes the right value), max_operand (9).
function task.corpus(seed, n, opts)
  local where = "task.corpus"
  opts = check_options(opts, { general = true, mix = true, slip = true, check = true, bad_format = true,
                               unhelpful = true, harmful = true, max_operand = true, carry_slip = true }, where)
  local max_operand = check_max_operand(opts.max_operand, where)
  check_count(n, where)
  local general_share = check_share(opts, "general", 0.2, where)
  local mix = check_share(opts, "mix", 0.5, where)
  local slip_share = check_share(opts, "slip", 0.35, where)
  local check = check_share(opts, "check", 0.08, where)
  local bad = check_share(opts, "bad_format", 0.1, where)
  local unhelpful = check_share(opts, "unhelpful", 0.3, where)
  local harmful = check_share(opts, "harmful", 0.2, where)
  local carry_slip = check_share(opts, "carry_slip", 0, where)
  local rng = generator(seed)
  local n_general = round(n * general_share)
  local n_reasoning = n - n_general
  local general_at = subset(rng, n, n_general)

  -- reasoning documents: problems (with replacement), then the exact subsets
  local problems = {}
  while #problems < n_reasoning do
    local p = draw_reasoning(rng, "train", max_operand)
    if p then problems[#problems + 1] = p end
  end
  local slip1 = subset(rng, n_reasoning, round(n_reasoning * slip_share))
  local slip2 = subset(rng, n_reasoning, round(n_reasoning * slip_share))
  local n_checked = round(n_reasoning * check)
  local checked = subset(rng, n_reasoning, n_checked)
  local mixed = subset(rng, n_reasoning, round(n_reasoning * mix))
  local bad_format = subset(rng, n_reasoning, round(n_reasoning * bad))
  local check_kinds, c = {}, 0
  for i = 1, n_reasoning do
    if checked[i] then
      c = c + 1
      check_kinds[i] = ({ "1", "2", "12" })[(c - 1) % 3 + 1]
    end
  end
  local reasoning_docs = {}
  for i, p in ipairs(problems) do
    local checks = { (check_kinds[i] or ""):find("1") ~= nil, (check_kinds[i] or ""):find("2") ~= nil }
    local segments = 2 + (checks[1] and 1 or 0) + (checks[2] and 1 or 0)
    local languages = {}
    for k = 1, segments do languages[k] = p.language end
    if mixed[i] then
      local any = false
      for k = 1, segments do
        if rng.int(0, 1) == 1 then languages[k], any = OTHER[p.language], true end
      end
      if not any then languages[rng.int(1, segments)] = OTHER[p.language] end
    end
    local slips = { slip1[i] and slip_first(rng, p) or nil,
                    slip2[i] and function(v) return slip(rng, v) end or nil }
    local reasoning, written, forgot = worked(p, slips, checks, languages,
                                              function() return rng.int(1, 1000000) <= carry_slip * 1000000 end)
    local format = "ok"
    local completion = reasoning .. summary(written)
    if bad_format[i] then
      format = rng.int(0, 1) == 0 and "no_close" or "junk"
      if format == "no_close" then
        completion = reasoning .. "<a>" .. written .. "</a>"
      else
        local junk = {}
        for j = 1, rng.int(1, 3) do
          local x = rng.int(j == 1 and 2 or 1, #JUNK)  -- not a space first: trailing space is no bad format
          junk[j] = JUNK:sub(x, x)
        end
        completion = completion .. table.concat(junk)
      end
    end
    local record = reasoning_record(p)
    record.text = task.prompt(record) .. completion
    record.slip1, record.slip2 = slip1[i] == true, slip2[i] == true
    record.carry1, record.carry2 = forgot[1] == true, forgot[2] == true
    record.checks, record.mixed, record.format = check_kinds[i] or "", mixed[i] == true, format
    record.right = tostring(written) == record.answer
    reasoning_docs[i] = record
  end

  -- general documents
  local general_docs = {}
  local wrong_set = subset(rng, n_general, round(n_general * unhelpful))
  local harm_set = subset(rng, n_general, round(n_general * harmful))
  for i = 1, n_general do
    local r
    repeat r = draw_general(rng, "train") until r
    local answer = wrong_set[i] and r.question or r.answer  -- unhelpful: the digits echoed, not reversed
    if wrong_set[i] and answer == r.answer then answer = r.question .. r.question:sub(1, 1) end  -- a palindrome
    local think = ""
    if harm_set[i] then think = string.rep(task.harmful, rng.int(1, 3)) end
    r.text = task.prompt(r) .. think .. summary(answer)
    r.helpful, r.harmful = not wrong_set[i], harm_set[i] == true
    general_docs[i] = r
  end

  local docs, ir, ig = {}, 0, 0
  for i = 1, n do
    if general_at[i] then ig = ig + 1; docs[i] = general_docs[ig]
    else ir = ir + 1; docs[i] = reasoning_docs[ir] end
  end
  return docs
end

-- n cold-start examples: distinct train questions with the readable completion (task.solution):
-- one language, every step checked, then the summary. Each record carries `completion`.
-- opts: max_operand (as task.problems).
function task.cold_start(seed, n, opts)
  local records = task.problems(seed, n, opts)
  for _, r in ipairs(records) do r.completion = task.solution(r) end
  return records
end

-- Non-reasoning SFT data: n general train prompts with their right answer as `completion`.
function task.general_sft(seed, n)
  local records = task.general(seed, n)
  for _, r in ipairs(records) do r.completion = task.solution(r) end
  return records
end

return task
