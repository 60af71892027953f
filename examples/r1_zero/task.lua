-- The R1-Zero demo's task: two-step arithmetic on small numbers, with verifiable answers.
--
--   local task = dofile("examples/r1_zero/task.lua")
--   local train = task.problems(1, 2000)                      -- {question = "3+4*2", answer = "11"}, ...
--   local test  = task.problems(2, 200, { split = "test" })   -- never a question of the train split
--   task.prompt(train[1])          --> "Q:3+4*2 A:<t>"        (generation continues inside <t>)
--   task.corpus(3, 20000)          --> {text = "Q:3+4*2 A:<t>4*2=8,3+8=11</t><a>11</a>"}, ... (noisy)
--   task.alphabet                  --> every character of prompts, completions and corpus
--   task.stop                      --> "</a>", where a completion ends
--   task.jsonl(train)              --> the records as JSON lines, for a data file
--
-- Template (R1-Zero's "User: ... Assistant: <think> ... </think> <answer> ... </answer>", shortened
-- because every character is a token of a character-level model):
--   prompt      Q:<question> A:<t>
--   completion  <steps></t><a><answer></a>      steps: "4*2=8,3+8=11", one "x op y = z" per operation
-- <t>..</t> stands for <think>..</think> and <a>..</a> for <answer>..</answer>.
--
-- Questions: three operands in 1..max_operand and two operators from `ops`, written as "a o b o c"
-- (usual precedence, left to right otherwise), "(a o b) o c" or "a o (b o c)"; problems whose
-- intermediate or final value would be negative are not drawn, so answers are 0..729 by default.
-- The train/test split is a fixed hash of the question text (one question in eight is "test"), so
-- test questions never appear in a train list or in the corpus, whatever the seeds.
--
-- Everything is a pure function of its seed: a splitmix64 generator on Lua integers, not
-- math.random, so every machine and Lua build draws the same problems.
local task = {}

task.alphabet = "0123456789+-*()=,<>/taQA: ?"
task.stop = "</a>"
task.think_open, task.think_close = "<t>", "</t>"
task.answer_open, task.answer_close = "<a>", "</a>"

local DEFAULT_MAX_OPERAND = 9
local DEFAULT_OPS = "+-*"
local TEST_SHARE = 8          -- one question in TEST_SHARE belongs to the test split
local MAX_MISSES = 100000     -- about 0.3 s of draws
local JUNK = " Q:=?"          -- trailing junk of badly formatted documents: no digits, so it never
                              -- reads as an answer

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
  -- uniform integer in [lo, hi] (the bias of % on 53 bits is far below anything measurable here)
  function self.int(lo, hi) return lo + (self.next() >> 11) % (hi - lo + 1) end
  return self
end

-- FNV-1a, 32 bits: the split of a question does not depend on any seed.
local function fnv1a(text)
  local h = 0x811C9DC5
  for i = 1, #text do h = ((h ~ text:byte(i)) * 0x01000193) & 0xFFFFFFFF end
  return h
end

function task.split_of(question)
  return fnv1a(question) % TEST_SHARE == 0 and "test" or "train"
end

local function apply(op, x, y)
  if op == "+" then return x + y elseif op == "-" then return x - y else return x * y end
end

local function step_text(x, op, y, z) return x .. op .. y .. "=" .. z end

-- The problem a question states, with its two steps in evaluation order: each step is {x, op, y, z}
-- with z = x op y, and the second step's x or y (`slot` 1 or 3) is the first step's result.
-- nil when the text is not a question of this task.
local function solve(question)
  local right_first
  local a, o1, b, o2, c = question:match("^(%d+)([%+%-%*])(%d+)([%+%-%*])(%d+)$")
  if a then
    right_first = o2 == "*" and o1 ~= "*"
  else
    a, o1, b, o2, c = question:match("^%((%d+)([%+%-%*])(%d+)%)([%+%-%*])(%d+)$")
    if a then
      right_first = false
    else
      a, o1, b, o2, c = question:match("^(%d+)([%+%-%*])%((%d+)([%+%-%*])(%d+)%)$")
      if not a then return nil end
      right_first = true
    end
  end
  a, b, c = math.tointeger(tonumber(a)), math.tointeger(tonumber(b)), math.tointeger(tonumber(c))
  local first, second
  if right_first then
    local t = apply(o2, b, c)
    first, second = { b, o2, c, t }, { a, o1, t, apply(o1, a, t), slot = 3 }
  else
    local t = apply(o1, a, b)
    first, second = { a, o1, b, t }, { t, o2, c, apply(o2, t, c), slot = 1 }
  end
  return { question = question, answer = tostring(second[4]), steps = { first, second } }
end

local function steps_text(first, second)
  return step_text(first[1], first[2], first[3], first[4]) .. "," .. step_text(second[1], second[2], second[3], second[4])
end

local function tagged_completion(steps, answer)
  return steps .. task.think_close .. task.answer_open .. answer .. task.answer_close
end

-- One random question in one of the three shapes; nil when a value on the way is negative.
local function draw_problem(rng, max_operand, ops)
  local a, b, c = rng.int(1, max_operand), rng.int(1, max_operand), rng.int(1, max_operand)
  local i1, i2 = rng.int(1, #ops), rng.int(1, #ops)
  local o1, o2 = ops:sub(i1, i1), ops:sub(i2, i2)
  local shape = rng.int(1, 3)
  local question
  if shape == 1 then
    question = a .. o1 .. b .. o2 .. c
  elseif shape == 2 then
    question = "(" .. a .. o1 .. b .. ")" .. o2 .. c
  else
    question = a .. o1 .. "(" .. b .. o2 .. c .. ")"
  end
  local p = solve(question)
  if p.steps[1][4] < 0 or p.steps[2][4] < 0 then return nil end
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

-- n problems of one split drawn with rng, with their worked steps (internal form); all different when
-- distinct, otherwise drawn with replacement.
local function draw_problems(rng, n, opts, where, distinct)
  if math.type(n) ~= "integer" or n < 0 then error(where .. ": n must be a non-negative integer", 3) end
  local split = opts.split or "train"
  if split ~= "train" and split ~= "test" then
    error(where .. ": split must be \"train\" or \"test\", got " .. tostring(split), 3)
  end
  local max_operand = opts.max_operand or DEFAULT_MAX_OPERAND
  local ops = opts.ops or DEFAULT_OPS
  if math.type(max_operand) ~= "integer" or max_operand < 1 or max_operand > 99 then
    error(where .. ": max_operand must be an integer in 1..99", 3)
  end
  if type(ops) ~= "string" or #ops == 0 or ops:find("[^%+%-%*]") then
    error(where .. ": ops must be a non-empty string of + - *", 3)
  end
  local list, seen = {}, {}
  local misses = 0  -- draws in a row that gave nothing new: many means the split is used up
  while #list < n do
    misses = misses + 1
    if misses > MAX_MISSES then
      error(string.format("%s: found only %d %s%s problems of the %d asked for (max_operand %d, ops %q)",
                          where, #list, distinct and "distinct " or "", split, n, max_operand, ops), 3)
    end
    local p = draw_problem(rng, max_operand, ops)
    if p and not (distinct and seen[p.question]) and task.split_of(p.question) == split then
      seen[p.question] = true
      list[#list + 1] = p
      misses = 0
    end
  end
  return list
end

-- n distinct problems {question =, answer =} of opts.split ("train", the default, or "test").
-- opts: split, max_operand (9), ops ("+-*"). Errors when the split has fewer than n questions.
function task.problems(seed, n, opts)
  opts = check_options(opts, { split = true, max_operand = true, ops = true }, "task.problems")
  local records = {}
  for i, p in ipairs(draw_problems(generator(seed), n, opts, "task.problems", true)) do
    records[i] = { question = p.question, answer = p.answer }
  end
  return records
end

function task.prompt(record)
  if type(record) ~= "table" or type(record.question) ~= "string" then
    error("task.prompt: expected a record with a string 'question'", 2)
  end
  return "Q:" .. record.question .. " A:" .. task.think_open
end

-- The correct completion of a record drawn by task.problems (what a perfect policy writes).
function task.solution(record)
  local p = type(record) == "table" and type(record.question) == "string" and solve(record.question)
  if not p then error("task.solution: not a question of this task: " .. tostring(record and record.question), 2) end
  return tagged_completion(steps_text(p.steps[1], p.steps[2]), p.answer)
end

-- A value near v but not v, and not negative: the slips of a careless solver.
local function slip(rng, v)
  local d = rng.int(1, 3)
  if rng.int(0, 1) == 0 and v - d >= 0 then return v - d end
  return v + d
end

-- Worked steps with one mistake; kind is "step" (the first result is off and the error carries
-- into the second step), "final" (the second result is off) or "copy" (both steps right, the answer
-- written differs from the last result). Returns steps text and the answer written.
local function wrong_solution(rng, p)
  local first, second = p.steps[1], p.steps[2]
  local kind = ({ "step", "final", "copy" })[rng.int(1, 3)]
  if kind == "step" then
    for _ = 1, 8 do
      local t = slip(rng, first[4])
      local x, y = second[1], second[3]
      if second.slot == 1 then x = t else y = t end
      local z = apply(second[2], x, y)
      if z >= 0 and tostring(z) ~= p.answer then
        return step_text(first[1], first[2], first[3], t) .. "," .. step_text(x, second[2], y, z), tostring(z), kind
      end
    end
    kind = "final"  -- every slip made a negative or unchanged result: fall back
  end
  if kind == "final" then
    local z = slip(rng, second[4])
    return steps_text(first, { second[1], second[2], second[3], z }), tostring(z), kind
  end
  return steps_text(first, second), tostring(slip(rng, second[4])), kind
end

-- The completion in one of the bad formats, from steps and answer; also returns the format's kind.
local function badly_formatted(rng, steps, answer)
  local kinds = { "no_close", "bare", "junk", "empty_think" }
  local kind = kinds[rng.int(1, #kinds)]
  local tagged = task.answer_open .. answer .. task.answer_close
  if kind == "no_close" then return steps .. tagged, kind end                        -- no </t>
  if kind == "bare" then return steps .. task.think_close .. answer, kind end        -- answer outside <a>
  if kind == "empty_think" then return task.think_close .. tagged, kind end          -- no reasoning
  local junk = {}
  for i = 1, rng.int(1, 4) do
    local j = rng.int(i == 1 and 2 or 1, #JUNK)  -- not a space first: trailing whitespace is no bad format
    junk[i] = JUNK:sub(j, j)
  end
  return steps .. task.think_close .. tagged .. table.concat(junk), kind            -- text after </a>
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

-- n pretraining documents {text = prompt .. completion, question, answer, wrong, format} on train
-- questions (drawn with replacement: a question may come back with other mistakes). Exactly
-- round(n * wrong) documents reach a wrong answer and, chosen independently, exactly
-- round(n * bad_format) are badly formatted; `wrong` is false or the mistake's kind ("step", "final",
-- "copy"), `format` is "ok" or the bad format's kind ("no_close", "bare", "junk", "empty_think").
-- opts: wrong (0.4), bad_format (0.2), max_operand (9), ops ("+-*").
function task.corpus(seed, n, opts)
  opts = check_options(opts, { wrong = true, bad_format = true, max_operand = true, ops = true }, "task.corpus")
  local wrong_share = opts.wrong or 0.4
  local bad_share = opts.bad_format or 0.2
  for name, share in pairs({ wrong = wrong_share, bad_format = bad_share }) do
    if type(share) ~= "number" or share < 0 or share > 1 then
      error("task.corpus: " .. name .. " must be a number in [0, 1]", 2)
    end
  end
  local rng = generator(seed)
  local problem_opts = { split = "train", max_operand = opts.max_operand, ops = opts.ops }
  local problems = draw_problems(rng, n, problem_opts, "task.corpus", false)
  local wrong_set = subset(rng, n, math.floor(n * wrong_share + 0.5))
  local bad_set = subset(rng, n, math.floor(n * bad_share + 0.5))
  local docs = {}
  for i, p in ipairs(problems) do
    local steps, answer, wrong_kind = steps_text(p.steps[1], p.steps[2]), p.answer, false
    if wrong_set[i] then steps, answer, wrong_kind = wrong_solution(rng, p) end
    local completion, format_kind = tagged_completion(steps, answer), "ok"
    if bad_set[i] then completion, format_kind = badly_formatted(rng, steps, answer) end
    docs[i] = { text = task.prompt(p) .. completion, question = p.question, answer = p.answer,
                wrong = wrong_kind, format = format_kind }
  end
  return docs
end

local function json_string(s)
  return '"' .. s:gsub('[%c"\\]', function(c)
    if c == '"' then return '\\"' elseif c == "\\" then return "\\\\" end
    return string.format("\\u%04x", c:byte())
  end) .. '"'
end

-- Records as JSON Lines: each record's string, number and boolean fields, keys sorted.
function task.jsonl(records)
  local lines = {}
  for i, record in ipairs(records) do
    local keys = {}
    for k in pairs(record) do keys[#keys + 1] = k end
    table.sort(keys)
    local fields = {}
    for _, k in ipairs(keys) do
      local v = record[k]
      local t = type(v)
      if t == "string" then v = json_string(v)
      elseif t == "number" or t == "boolean" then v = tostring(v)
      else error("task.jsonl: record " .. i .. " field '" .. tostring(k) .. "' is a " .. t, 2) end
      fields[#fields + 1] = json_string(tostring(k)) .. ":" .. v
    end
    lines[i] = "{" .. table.concat(fields, ",") .. "}\n"
  end
  return table.concat(lines)
end

return task
