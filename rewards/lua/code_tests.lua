-- Code test reward: run the completion's program against the sample's tests in a sandboxed
-- subprocess (verify.run_program) and score the share that passes.
--
--   program = the last ```<language> ... ``` block of the completion (any ``` block if none is
--             labelled);
--   reward  = passed / total over sample.tests   (0 when there is no program);
--             with options.binary = true: 1 if every test passes, else 0.
--
-- sample.tests is a list of {input = "...", output = "..."} (stdin/stdout, compared modulo trailing
-- whitespace) and/or strings of assertion code run after the program (e.g. "assert f(2) == 4").
-- sample.language ("python" or "cpp") overrides options.language (default "python").
-- Limits per test: options.time_limit seconds (default 5), options.memory_limit MiB (default 512).
--
-- Usage: { name = "tests", rule = require("code_tests"){ language = "python" }, seconds = 120 }
return function(options)
  options = options or {}
  local fence_names = { python = { "python", "py", "python3" }, cpp = { "cpp", "c++", "cc" } }

  local function last_block(text, labels)
    local found
    for label, body in text:gmatch("```([%w%+]*)[ \t]*\n(.-)```") do
      for _, wanted in ipairs(labels) do
        if label == wanted then found = body end
      end
    end
    if found then return found end
    for _, body in text:gmatch("```([%w%+]*)[ \t]*\n(.-)```") do found = body end
    return found
  end

  return function(sample)
    local language = sample.language or options.language or "python"
    local labels = fence_names[language]
    if not labels then error("code_tests: unsupported language '" .. tostring(language) .. "'") end
    if type(sample.tests) ~= "table" or #sample.tests == 0 then
      error("code_tests: the sample needs a non-empty 'tests' list")
    end
    local source = last_block(sample.completion, labels)
    if not source then return 0 end
    local result = verify.run_program{
      language = language,
      source = source,
      tests = sample.tests,
      time_limit = options.time_limit or 5,
      memory_limit = options.memory_limit or 512,
    }
    if options.binary then return result.passed == result.total and 1 or 0 end
    return result.passed / result.total
  end
end
