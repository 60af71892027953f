-- DAPO soft overlong punishment (DAPO, Yu et al. 2025, eq. 13), on completion length L in tokens:
--
--   reward = 0                            if L <= max_tokens - cache_tokens
--            (max_tokens - cache_tokens - L) / cache_tokens
--                                         if max_tokens - cache_tokens < L <= max_tokens
--            -1                           if L > max_tokens
--
-- Defaults follow DAPO: max_tokens = 16384, cache_tokens = 4096 (L = 14000 gives -0.418).
-- Needs sample.completion_tokens.
--
-- Usage: rule = require("dapo_overlong"){ max_tokens = 4096, cache_tokens = 512 }
return function(options)
  options = options or {}
  local max_tokens = options.max_tokens or 16384
  local cache_tokens = options.cache_tokens or 4096
  if cache_tokens <= 0 or cache_tokens > max_tokens then
    error("dapo_overlong: need 0 < cache_tokens <= max_tokens")
  end

  return function(sample)
    local length = sample.completion_tokens
    if type(length) ~= "number" then error("dapo_overlong: the sample has no completion_tokens") end
    local soft_start = max_tokens - cache_tokens
    if length <= soft_start then return 0 end
    if length <= max_tokens then return (soft_start - length) / cache_tokens end
    return -1
  end
end
