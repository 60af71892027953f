-- Language consistency of the chain of thought (DeepSeek-R1 §2.3.2): the share of the reasoning's
-- words written in the target language.
--
--   reasoning = the completion before the end-of-thinking marker (all of it without the marker);
--   reward    = words of the reasoning in the target language / words of the reasoning
--               (verify.language_consistency; 0 when the reasoning has no word).
--
-- The target is sample[options.field] when the record has that field (default field "language"),
-- else options.target: a script name ("latin", "cyrillic", "han", ...), { chars = "abc..." } (a
-- character set) or { words = { "plus", "equals", ... } } (a vocabulary).
-- options.marker: the end-of-thinking marker, default "</think>".
--
-- Usage: rule = require("reasoning_language"){ target = "latin", marker = "</t>" }
return function(options)
  options = options or {}
  local field = options.field or "language"
  local marker = options.marker or "</think>"

  return function(sample)
    local target = sample[field]
    if target == nil then target = options.target end
    if target == nil then
      error("reasoning_language: no target language (set options.target or the record's " .. field .. " field)")
    end
    return verify.language_consistency(sample.completion, target, marker)
  end
end
