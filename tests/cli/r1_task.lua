-- Checks of the R1 example's task generator (examples/r1/task.lua), written independently of it:
-- answers recomputed by Lua from the question text, each document's text read back step by step
-- against its recorded properties, the corpus shares counted exactly. Also writes corpus completions
-- with the reward values expected of examples/r1/rules.lua for r1_task.sh to compare with grpo rewards.
--   lua5.4 r1_task.lua <repository root> <output dir>
local root, out_dir = arg[1], arg[2]
local task = dofile(root .. "/examples/r1/task.lua")

local failures = 0
local function check(ok, message)
  if not ok then
    failures = failures + 1
    if failures <= 20 then io.stderr:write("FAIL: ", message, "\n") end
  end
end

-- The two languages as this test knows them (the README's table).
local WORDS = {
  latin = { plus = "p", minus = "m", eq = "e", check = "check:", header = "Q:" },
  greek = { plus = "π", minus = "μ", eq = "ι", check = "ελεγχ:", header = "Θ:" },
}

-- Letters by script, from code points: ASCII letters are Latin, U+0370..U+03FF Greek.
local function letters(text)
  local latin, greek = 0, 0
  for _, c in utf8.codes(text) do
    if (c >= 65 and c <= 90) or (c >= 97 and c <= 122) then latin = latin + 1
    elseif c >= 0x370 and c <= 0x3FF then greek = greek + 1 end
  end
  return latin, greek
end

-- The language of a piece of text whose letters are all of one script; nil when mixed or none.
local function language_of(text)
  local latin, greek = letters(text)
  if latin > 0 and greek == 0 then return "latin" end
  if greek > 0 and latin == 0 then return "greek" end
  return nil
end

-- "3p(4m2)" in its language -> the value Lua computes for "3+(4-2)".
local function value_of(question, language)
  local w = WORDS[language]
  local expr = question:gsub(w.plus, "+"):gsub(w.minus, "-")
  if expr:find("[^%d%+%-%(%)]") then return nil end
  return load("return " .. expr)()
end

-- A step "x<op>y<eq>z" in a language: x, op ("+"/"-"), y, z; nil when it is not one.
local function read_step(text, language)
  local w = WORDS[language]
  for op, word in pairs({ ["+"] = w.plus, ["-"] = w.minus }) do
    local x, y, z = text:match("^(%d+)" .. word .. "(%d+)" .. w.eq .. "(%d+)$")
    if x then return tonumber(x), op, tonumber(y), tonumber(z) end
  end
  return nil
end

-- Reads a reasoning completion's reasoning part into segments {language, check, x, op, y, z}.
local function read_reasoning(reasoning)
  local segments = {}
  for piece in (reasoning .. ","):gmatch("([^,]*),") do
    local language = language_of(piece)
    if not language then return nil end
    local is_check = false
    local w = WORDS[language]
    if piece:sub(1, #w.check) == w.check then piece, is_check = piece:sub(#w.check + 1), true end
    local x, op, y, z = read_step(piece, language)
    if not x then return nil end
    segments[#segments + 1] = { language = language, check = is_check, x = x, op = op, y = y, z = z }
  end
  return segments
end

local function apply(op, x, y) return op == "+" and x + y or x - y end

-- The two steps of a question in evaluation order, computed here: {x, op, y, z}, slot of the carry.
local function steps_of(question, language)
  local w = WORDS[language]
  local neutral = question:gsub(w.plus, "+"):gsub(w.minus, "-")
  local a, o1, b, o2, c = neutral:match("^(%d)([%+%-])%((%d)([%+%-])(%d)%)$")
  if a then
    a, b, c = tonumber(a), tonumber(b), tonumber(c)
    local t = apply(o2, b, c)
    return { b, o2, c, t }, { a, o1, t, apply(o1, a, t) }, 3
  end
  a, o1, b, o2, c = neutral:match("^%(?(%d)([%+%-])(%d)%)?([%+%-])(%d)$")
  a, b, c = tonumber(a), tonumber(b), tonumber(c)
  local t = apply(o1, a, b)
  return { a, o1, b, t }, { t, o2, c, apply(o2, t, c) }, 1
end

local function same(a, b)
  if #a ~= #b then return false end
  for i = 1, #a do
    for k, v in pairs(a[i]) do if b[i][k] ~= v then return false end end
  end
  return true
end

-- 1. Problems: deterministic, answers right, splits by the hash, distinct, both languages.
local train = task.problems(1, 3000)
check(same(train, task.problems(1, 3000)), "task.problems is not deterministic")
check(train[1].question ~= task.problems(2, 1)[1].question, "different seeds gave the same first question")
local test = task.problems(2, 300, { split = "test" })
local seen, by_language = {}, { latin = 0, greek = 0 }
for _, list in ipairs({ train, test }) do
  for _, r in ipairs(list) do
    check(r.kind == "reasoning", "kind of " .. r.question)
    local v = value_of(r.question, r.script)
    check(v ~= nil and tostring(v) == r.answer, "answer of " .. r.question .. ": " .. r.answer)
    local first, second = steps_of(r.question, r.script)
    check(first[4] >= 0 and second[4] >= 0, "negative value on the way in " .. r.question)
    local neutral = r.question:gsub(WORDS[r.script].plus, "+"):gsub(WORDS[r.script].minus, "-")
    check(not seen[neutral], "question drawn twice or in both splits: " .. neutral)
    seen[neutral] = true
    check(task.split_of(neutral) == (list == test and "test" or "train"), "split of " .. neutral)
    by_language[r.script] = by_language[r.script] + 1
    check(task.prompt(r) == WORDS[r.script].header .. r.question .. "<t>", "prompt of " .. r.question)
    -- the readable solution: one language, each step checked, the right summary
    local solution = task.solution(r)
    local reasoning, summary = solution:match("^(.*)</t>(.*)$")
    check(summary == "<a>" .. r.answer .. "</a>", "summary of " .. solution)
    local segments = read_reasoning(reasoning or "")
    check(segments and #segments == 4, "solution segments of " .. solution)
    if segments and #segments == 4 then
      local want = { first, first, second, second }
      for k, s in ipairs(segments) do
        check(s.language == r.script and s.check == (k % 2 == 0), "segment " .. k .. " of " .. solution)
        check(s.x == want[k][1] and s.op == want[k][2] and s.y == want[k][3] and s.z == want[k][4],
              "step " .. k .. " of " .. solution)
      end
    end
  end
end
check(by_language.latin > 1300 and by_language.greek > 1300, "languages not both common: " .. by_language.latin .. "/" .. by_language.greek)

-- 2. General prompts: digits reversed, splits, distinct.
local general = task.general(3, 500)
local general_test = task.general(6, 60, { split = "test" })
local gseen = {}
for _, list in ipairs({ general, general_test }) do
  for _, r in ipairs(list) do
    check(r.kind == "general" and r.question:match("^%d%d%d%d?%d?$"), "general question " .. tostring(r.question))
    check(r.answer == r.question:reverse(), "general answer of " .. r.question)
    check(not gseen[r.question], "general question drawn twice or in both splits: " .. r.question)
    gseen[r.question] = true
    check(task.split_of("R" .. r.question) == (list == general_test and "test" or "train"), "general split of " .. r.question)
    check(task.prompt(r) == "R:" .. r.question .. "<t>", "general prompt")
    check(task.solution(r) == "</t><a>" .. r.answer .. "</a>", "general solution")
  end
end

-- 3. The corpus: every document read back; exact shares.
-- Default shares, plus forgotten carries (off by default) so that they are read back too.
local N = 6000
local corpus = task.corpus(4, N, { carry_slip = 0.5 })
local again = task.corpus(4, N, { carry_slip = 0.5 })
for i = 1, N do check(corpus[i].text == again[i].text, "task.corpus is not deterministic at " .. i) end
local n_general = math.floor(N * 0.2 + 0.5)
local n_reasoning = N - n_general
local count = { general = 0, slip1 = 0, slip2 = 0, checked = 0, mixed = 0, bad = 0, unhelpful = 0, harmful = 0 }
local right_checked, n_checked_both, right_unchecked, n_unchecked = 0, 0, 0, 0
local right_both = 0
local checks_kinds = {}
local carry_seen, carry_forgot = 0, 0  -- carrying steps not slipped otherwise; those written without the carry
local expected = {}  -- completions with the rule values expected of rules.lua
local letters_target, letters_all = 0, 0
for i, d in ipairs(corpus) do
  if d.kind == "general" then
    count.general = count.general + 1
    local q, think, answer = d.text:match("^R:(%d+)<t>([^<]*)</t><a>(%d+)</a>$")
    check(q == d.question, "general document " .. i .. ": " .. d.text)
    check(d.answer == q:reverse(), "general document " .. i .. " answer field")
    check((answer == q:reverse()) == d.helpful, "general document " .. i .. " helpful flag: " .. d.text)
    check((think:find("#") ~= nil) == d.harmful and think:match("^#*$") ~= nil, "general document " .. i .. " harmful flag")
    check(task.split_of("R" .. q) == "train", "general document " .. i .. " is a test prompt")
    if not d.helpful then count.unhelpful = count.unhelpful + 1 end
    if d.harmful then count.harmful = count.harmful + 1 end
    expected[#expected + 1] = { kind = "general", answer = d.answer, completion = d.text:sub(#("R:" .. q .. "<t>") + 1),
                                accuracy = 0, format = 1, language = 0, verification = 0,
                                helpfulness = d.helpful and 1 or 0, harmlessness = d.harmful and 0 or 1 }
  else
    local w = WORDS[d.script]
    local header = d.text:sub(1, #w.header)
    local question, completion = d.text:sub(#w.header + 1):match("^([^<]*)<t>(.*)$")
    check(header == w.header and question == d.question, "document " .. i .. " prompt: " .. d.text)
    check(tostring(value_of(question, d.script)) == d.answer, "document " .. i .. " answer field")
    local neutral = question:gsub(w.plus, "+"):gsub(w.minus, "-")
    check(task.split_of(neutral) == "train", "document " .. i .. " is a test question")
    -- format
    local reasoning, answer, format = completion:match("^([^<]*)</t><a>(%d+)</a>$")
    format = "ok"
    if not reasoning then
      reasoning, answer = completion:match("^([^<]*)<a>(%d+)</a>$")
      format = "no_close"
      if not reasoning then
        reasoning, answer = completion:match("^([^<]*)</t><a>(%d+)</a>[ ?;]+$")
        format = "junk"
      end
    end
    check(reasoning ~= nil and format == d.format, "document " .. i .. " format " .. d.format .. ": " .. d.text)
    if format ~= "ok" then count.bad = count.bad + 1 end
    local segments = reasoning and read_reasoning(reasoning)
    check(segments ~= nil, "document " .. i .. " reasoning: " .. d.text)
    if segments then
      local first, second, slot = steps_of(question, d.script)
      -- the steps and checks as they should follow one another
      local k, checks, mixed = 1, "", false
      local s = segments[k]
      check(s and not s.check and s.x == first[1] and s.op == first[2] and s.y == first[3], "document " .. i .. " first step")
      local slipped1 = s.z ~= first[4]
      local function carrying(x, op, y) return op == "+" and x % 10 + y % 10 >= 10 end
      if d.carry1 then
        check(not d.slip1 and carrying(first[1], first[2], first[3]) and s.z == first[4] - 10,
              "document " .. i .. " forgotten carry in step 1: " .. d.text)
      end
      if not d.slip1 and carrying(first[1], first[2], first[3]) then
        -- step 1's carry is forgotten only where step 2 stays non-negative with it
        local x1, y1 = second[1], second[3]
        if slot == 1 then x1 = first[4] - 10 else y1 = first[4] - 10 end
        if apply(second[2], x1, y1) >= 0 then
          carry_seen, carry_forgot = carry_seen + 1, carry_forgot + (d.carry1 and 1 or 0)
        else
          check(not d.carry1, "document " .. i .. " forgot a carry that makes step 2 negative")
        end
      end
      local carry = s.z
      if segments[k + 1] and segments[k + 1].check then
        k = k + 1
        local c = segments[k]
        check(c.x == first[1] and c.op == first[2] and c.y == first[3] and c.z == first[4], "document " .. i .. " first check")
        checks, carry = checks .. "1", c.z
      end
      k = k + 1
      s = segments[k]
      local x, y = second[1], second[3]
      if slot == 1 then x = carry else y = carry end
      check(s and not s.check and s.x == x and s.op == second[2] and s.y == y, "document " .. i .. " second step: " .. d.text)
      local slipped2 = s and s.z ~= apply(second[2], x, y)
      if d.carry2 then
        check(not d.slip2 and carrying(x, second[2], y) and s.z == apply(second[2], x, y) - 10,
              "document " .. i .. " forgotten carry in step 2: " .. d.text)
      end
      if not d.slip2 and carrying(x, second[2], y) then
        carry_seen, carry_forgot = carry_seen + 1, carry_forgot + (d.carry2 and 1 or 0)
      end
      local last = s and s.z
      if segments[k + 1] then
        k = k + 1
        local c = segments[k]
        check(c.check and c.x == x and c.op == second[2] and c.y == y and c.z == apply(second[2], x, y),
              "document " .. i .. " second check")
        checks, last = checks .. "2", c.z
      end
      check(#segments == k, "document " .. i .. " has extra segments")
      for _, seg in ipairs(segments) do mixed = mixed or seg.language ~= d.script end
      check(slipped1 == (d.slip1 or d.carry1) and slipped2 == (d.slip2 or d.carry2), "document " .. i .. " slips: " .. d.text)
      check(checks == d.checks and mixed == d.mixed, "document " .. i .. " checks/mixed: " .. d.text)
      check(tostring(last) == answer, "document " .. i .. " answer is not the last value: " .. d.text)
      check((answer == d.answer) == d.right, "document " .. i .. " right flag")
      if d.slip1 then count.slip1 = count.slip1 + 1 end
      if d.slip2 then count.slip2 = count.slip2 + 1 end
      if d.mixed then count.mixed = count.mixed + 1 end
      if checks ~= "" then
        count.checked = count.checked + 1
        checks_kinds[checks] = (checks_kinds[checks] or 0) + 1
        if checks == "12" then
          n_checked_both = n_checked_both + 1
          if d.right then right_both = right_both + 1 end
        end
        if d.right then right_checked = right_checked + 1 end
      else
        n_unchecked = n_unchecked + 1
        if d.right then right_unchecked = right_unchecked + 1 end
      end
      -- the rules' reasoning part: before "</t>", or all of the completion without it
      local latin, greek = letters(format == "no_close" and completion or reasoning)
      local in_target = d.script == "latin" and latin or greek
      letters_target, letters_all = letters_target + in_target, letters_all + latin + greek
      if i <= 3000 then
        expected[#expected + 1] = { kind = "reasoning", script = d.script, answer = d.answer, completion = completion,
                                    accuracy = answer == d.answer and 1 or 0, format = format == "ok" and 1 or 0,
                                    language = in_target / (latin + greek), verification = checks ~= "" and 1 or 0,
                                    helpfulness = 0, harmlessness = 1 }
      end
    end
  end
end
local function round(x) return math.floor(x + 0.5) end
check(count.general == n_general, "general documents: " .. count.general)
-- A forgotten carry is drawn per carrying step (probability 0.5) where it keeps every value
-- non-negative. Over the ~1,700 such steps 3 sigma is about 0.036.
check(carry_seen > 1000 and math.abs(carry_forgot / carry_seen - 0.5) < 0.036,
      string.format("forgotten carries: %d of %d", carry_forgot, carry_seen))
check(count.slip1 == round(n_reasoning * 0.35) and count.slip2 == round(n_reasoning * 0.35),
      "slips: " .. count.slip1 .. ", " .. count.slip2)
check(count.checked == round(n_reasoning * 0.08), "checked documents: " .. count.checked)
check(count.mixed == round(n_reasoning * 0.5), "mixed documents: " .. count.mixed)
check(count.bad == round(n_reasoning * 0.1), "badly formatted documents: " .. count.bad)
check(count.unhelpful == round(n_general * 0.3) and count.harmful == round(n_general * 0.2),
      "general shares: " .. count.unhelpful .. ", " .. count.harmful)
for _, kind in ipairs({ "1", "2", "12" }) do
  local want = count.checked // 3 + ((kind == "1" and count.checked % 3 >= 1 or kind == "2" and count.checked % 3 >= 2) and 1 or 0)
  check(checks_kinds[kind] == want, "documents checking " .. kind .. ": " .. tostring(checks_kinds[kind]))
end
-- What the corpus teaches: a checked document ends right more often; one checking both steps always.
local share_checked, share_unchecked = right_checked / count.checked, right_unchecked / n_unchecked
check(right_both == n_checked_both, "a document checking both steps ends wrong")
check(share_checked > share_unchecked + 0.2, string.format("checked documents right %.3f, unchecked %.3f", share_checked, share_unchecked))
print(string.format("forgotten carries: %d of %d eligible steps", carry_forgot, carry_seen))
print(string.format("corpus of %d: %d reasoning (right: checked %.3f, unchecked %.3f; language consistency %.3f), %d general",
                    N, n_reasoning, share_checked, share_unchecked, letters_target / letters_all, n_general))

-- Options: other shares are honoured exactly; unknown options and bad shares are errors.
local c2 = task.corpus(9, 1000, { general = 0, mix = 0, check = 0.5, slip = 0, bad_format = 0 })
local n_checked2, n_mixed2, n_right2 = 0, 0, 0
for _, d in ipairs(c2) do
  if d.checks ~= "" then n_checked2 = n_checked2 + 1 end
  if d.mixed then n_mixed2 = n_mixed2 + 1 end
  if d.right and d.kind == "reasoning" then n_right2 = n_right2 + 1 end
end
check(n_checked2 == 500 and n_mixed2 == 0 and n_right2 == 1000, "options: " .. n_checked2 .. " " .. n_mixed2 .. " " .. n_right2)
check(not pcall(task.corpus, 1, 10, { mixx = 0.1 }), "unknown corpus option accepted")
check(not pcall(task.corpus, 1, 10, { mix = 1.5 }), "share above 1 accepted")
check(not pcall(task.problems, 1, 10, { split = "dev" }), "unknown split accepted")
check(not pcall(task.problems, 1.5, 10), "non-integer seed accepted")
check(not pcall(task.problems, 1, 10, { max_operand = 10 }), "max_operand 10 accepted")
-- max_operand bounds every operand, in problems, cold-start data and corpus documents alike.
local small = task.problems(1, 1000, { max_operand = 6 })
for _, r in ipairs(task.cold_start(5, 300, { max_operand = 6 })) do small[#small + 1] = r end
for _, d in ipairs(task.corpus(9, 2000, { max_operand = 6 })) do
  if d.kind == "reasoning" then small[#small + 1] = d end
end
for _, r in ipairs(small) do
  local operands = {}
  for digits in r.question:gmatch("%d+") do operands[#operands + 1] = tonumber(digits) end
  check(#operands == 3 and math.max(table.unpack(operands)) <= 6 and math.min(table.unpack(operands)) >= 1,
        "max_operand 6: " .. r.question)
  check(tostring(value_of(r.question, r.script)) == r.answer, "max_operand 6 answer of " .. r.question)
end

-- Cold-start data: readable solutions of distinct train questions.
for _, r in ipairs(task.cold_start(5, 50)) do check(r.completion == task.solution(r), "cold start " .. r.question) end

-- Expected rule values for r1_task.sh.
local function json_string(s) return '"' .. s:gsub('[%c"\\]', function(ch) return string.format("\\u%04x", ch:byte()) end) .. '"' end
local file = assert(io.open(out_dir .. "/corpus_samples.jsonl", "wb"))
for _, e in ipairs(expected) do
  local fields = { '"kind":' .. json_string(e.kind), '"answer":' .. json_string(e.answer), '"completion":' .. json_string(e.completion) }
  if e.script then fields[#fields + 1] = '"script":' .. json_string(e.script) end
  local want = {}
  for _, rule in ipairs({ "accuracy", "format", "language", "verification", "helpfulness", "harmlessness" }) do
    want[#want + 1] = string.format('"%s":%.17g', rule, e[rule])
  end
  fields[#fields + 1] = '"want":{' .. table.concat(want, ",") .. "}"
  file:write("{" .. table.concat(fields, ",") .. "}\n")
end
file:close()
print(#expected .. " corpus completions written with their expected rule values")

if failures > 0 then
  io.stderr:write(failures .. " checks failed\n")
  os.exit(1)
end
print("task checks passed")
