-- Language-consistency reward (DeepSeek-R1): the share of the chain of thought written in the
-- target language, measured on letters so that Chinese and Japanese (no spaces) count fairly.
--
--   text   = the <think>...</think> block of the completion (the whole completion without one);
--   reward = letters of the target script in text / all letters in text   (0 with no letters).
--
-- The target script is options.script, or sample[options.field] when that field is present
-- (default field "script"), e.g. "latin", "han", "cyrillic" (see verify.script_ratio).
--
-- Usage: rule = require("language_consistency"){ script = "latin" }
return function(options)
  options = options or {}
  local field = options.field or "script"

  return function(sample)
    local script = sample[field] or options.script
    if not script then error("language_consistency: no target script (set options.script)") end
    local completion = sample.completion
    local think = completion:match("<think>(.-)</think>") or completion:match("<think>(.*)$")
    return verify.script_ratio(think or completion, script)
  end
end
