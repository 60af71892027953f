-- Checks of examples/r1_zero/task.lua against independent computations: every answer is recomputed
-- by Lua itself evaluating the question (load("return 3+4*2")), formats are checked with patterns
-- written here, and the corpus's shares of wrong and badly formatted documents are counted.
-- Usage: lua5.4 r1_zero_task.lua REPO_ROOT OUT_DIR
-- Writes OUT_DIR/corpus_samples.jsonl: corpus completions with the rewards this file expects
-- (want_format, want_accuracy), for r1_zero_task.sh to score with `grpo rewards`.
local root, out_dir = arg[1], arg[2]
local task = dofile(root .. "/examples/r1_zero/task.lua")

local failures = 0
local function check(ok, message)
  if not ok then
    failures = failures + 1
    io.stderr:write("FAIL: ", message, "\n")
  end
end

-- The value of an arithmetic question, by Lua's own parser (usual precedence, integers).
local function evaluate(question)
  assert(question:match("^[%d%+%-%*%(%)]+$"), "not arithmetic: " .. question)
  return assert(load("return " .. question))()
end

local function same_records(a, b)
  if #a ~= #b then return false end
  for i = 1, #a do
    for k, v in pairs(a[i]) do
      if b[i][k] ~= v then return false end
    end
  end
  return true
end

-- Determinism: the same seed gives the same lists; another seed another list.
check(same_records(task.problems(11, 300), task.problems(11, 300)), "problems are not deterministic")
check(same_records(task.corpus(12, 300), task.corpus(12, 300)), "corpus is not deterministic")
check(not same_records(task.problems(11, 300), task.problems(13, 300)), "seeds 11 and 13 give the same problems")
-- A fixed value, so that a change of generator (or a Lua build that differs) is seen.
local first = task.problems(1, 1)[1]
check(first.question == "(8+3)*3" and first.answer == "33",
      "task.problems(1, 1) changed: " .. first.question .. " = " .. first.answer)

-- Answers, prompts and worked solutions.
local train = task.problems(1, 5000)
local test = task.problems(2, 500, { split = "test" })
for _, list in ipairs({ train, test }) do
  local seen = {}
  for _, r in ipairs(list) do
    check(not seen[r.question], "question twice in one list: " .. r.question)
    seen[r.question] = true
    local value = evaluate(r.question)
    check(math.type(value) == "integer" and value >= 0 and r.answer == tostring(value),
          r.question .. ": answer " .. r.answer .. ", Lua says " .. tostring(value))
    check(task.prompt(r) == "Q:" .. r.question .. " A:<t>", "prompt of " .. r.question .. ": " .. task.prompt(r))
    local solution = task.solution(r)
    local reasoning, answer = solution:match("^([^<]+)</t><a>(%d+)</a>$")
    check(reasoning and answer == r.answer, "solution of " .. r.question .. ": " .. solution)
    local steps = 0
    for x, op, y, z in (reasoning or ""):gmatch("(%d+)([%+%-%*])(%d+)=(%d+)") do
      steps = steps + 1
      check(evaluate(x .. op .. y) == tonumber(z), "solution of " .. r.question .. ": wrong step " .. x .. op .. y .. "=" .. z)
    end
    check(steps == 2, "solution of " .. r.question .. " has " .. steps .. " steps")
    check(#(task.prompt(r) .. solution) <= 60, "longer than 60 characters: " .. task.prompt(r) .. solution)
  end
end

-- Train and test are disjoint; the corpus uses train questions only.
local test_questions = {}
for _, r in ipairs(test) do test_questions[r.question] = true end
for _, r in ipairs(train) do check(not test_questions[r.question], "test question in train: " .. r.question) end
for _, r in ipairs(task.problems(3, 500, { split = "test" })) do test_questions[r.question] = true end

-- The corpus: count correct and well formatted documents independently of the generator's labels.
local function in_alphabet(text)
  for i = 1, #text do
    if not task.alphabet:find(text:sub(i, i), 1, true) then return false end
  end
  return true
end

-- The answer a document gives: the last <a>..</a>, else the last number after the reasoning.
local function stated_answer(completion)
  local tagged
  for a in completion:gmatch("<a>(.-)</a>") do tagged = a end
  if tagged then return tagged, true end
  local last
  for number in completion:gmatch("%d+") do last = number end
  return last, false
end

local function well_formatted(completion)
  local reasoning, answer = completion:match("^([^<]+)</t><a>([^<]+)</a>$")
  return reasoning ~= nil
end

local function count_corpus(seed, n, wrong, bad, samples)
  local docs = task.corpus(seed, n, { wrong = wrong, bad_format = bad })
  check(#docs == n, "corpus size " .. #docs .. " for " .. n)
  local correct, formatted = 0, 0
  for _, d in ipairs(docs) do
    check(in_alphabet(d.text), "character outside task.alphabet: " .. d.text)
    check(#d.text <= 60, "document longer than 60 characters: " .. d.text)
    local question, completion = d.text:match("^Q:([^ ]+) A:<t>(.*)$")
    check(question ~= nil, "document without the prompt template: " .. d.text)
    if question then
      check(not test_questions[question], "test question in the corpus: " .. question)
      local gold = tostring(evaluate(question))
      local answer, tagged = stated_answer(completion)
      local is_correct = answer == gold
      if is_correct then correct = correct + 1 end
      check(is_correct == (d.wrong == false), "label 'wrong' = " .. tostring(d.wrong) .. " for " .. d.text)
      local ok = well_formatted(completion)
      if ok then formatted = formatted + 1 end
      check(ok == (d.format == "ok"), "label 'format' = " .. d.format .. " for " .. d.text)
      if is_correct and ok then
        for x, op, y, z in completion:gmatch("(%d+)([%+%-%*])(%d+)=(%d+)") do
          check(evaluate(x .. op .. y) == tonumber(z), "correct document with a wrong step: " .. d.text)
        end
      end
      if samples then
        samples[#samples + 1] = { answer = gold, completion = completion,
                                  want_format = ok and 1 or 0, want_accuracy = (tagged and is_correct) and 1 or 0 }
      end
    end
  end
  return correct, formatted
end

local samples = {}
local correct, formatted = count_corpus(5, 2000, 0.4, 0.2, samples)
check(correct == 1200, "corpus(wrong = 0.4): " .. correct .. " of 2000 correct, expected 1200")
check(formatted == 1600, "corpus(bad_format = 0.2): " .. formatted .. " of 2000 well formatted, expected 1600")
correct, formatted = count_corpus(6, 999, 0.25, 0.5)
check(correct == 749 and formatted == 499, "corpus(0.25, 0.5) of 999: " .. correct .. " correct, " .. formatted .. " formatted")
correct, formatted = count_corpus(7, 300, 0, 0)
check(correct == 300 and formatted == 300, "clean corpus: " .. correct .. " correct, " .. formatted .. " formatted")
correct, formatted = count_corpus(8, 300, 1, 1)
check(correct == 0 and formatted == 0, "all-noise corpus: " .. correct .. " correct, " .. formatted .. " formatted")

-- Every kind of mistake and bad format occurs.
local kinds = {}
for _, d in ipairs(task.corpus(5, 2000)) do kinds[tostring(d.wrong)] = true; kinds[d.format] = true end
for _, k in ipairs({ "false", "step", "final", "copy", "ok", "no_close", "bare", "junk", "empty_think" }) do
  check(kinds[k], "the corpus has no document of kind " .. k)
end

-- Bad options are named.
local function error_of(f, ...)
  local ok, message = pcall(f, ...)
  return not ok and tostring(message) or ""
end
check(error_of(task.problems, 1, 5, { spilt = "test" }):find("unknown option 'spilt'", 1, true),
      "misspelt option not named")
check(error_of(task.problems, 1, 5, { split = "dev" }):find('split must be "train" or "test"', 1, true),
      "bad split not reported")
check(error_of(task.problems, 1, 5000, { split = "test" }):find("found only", 1, true), "exhausted split not reported")
check(error_of(task.corpus, 1, 5, { wrong = 2 }):find("wrong must be a number in [0, 1]", 1, true),
      "bad share not reported")

-- JSON lines round trip through the checked fields.
local line = task.jsonl({ { question = "(8+3)*3", answer = "33", n = 2 } })
check(line == '{"answer":"33","n":2,"question":"(8+3)*3"}\n', "jsonl: " .. line)

local file = assert(io.open(out_dir .. "/corpus_samples.jsonl", "w"))
file:write(task.jsonl(samples))
file:close()

if failures > 0 then
  io.stderr:write(failures, " checks failed\n")
  os.exit(1)
end
print("task checks passed")
