-- queuekit: how scripts call Redis, checking that every key touched was passed in KEYS.
-- The test suite runs with this prelude; a script touching an undeclared key fails. A
-- declared key ending in ':' declares a prefix: peek_claim learns its job keys (all in the
-- queue's slot) only as it reads, so it passes '{<prefix>:<queue>}:job:' instead.
local rcall
do
  local declared, prefixes = {}, {}
  for _, key in ipairs(KEYS) do
    declared[key] = true
    if string.sub(key, -1) == ':' then
      prefixes[#prefixes + 1] = key
    end
  end
  local function covered(key)
    if declared[key] then
      return true
    end
    for _, prefix in ipairs(prefixes) do
      if type(key) == 'string' and string.sub(key, 1, #prefix) == prefix then
        return true
      end
    end
    return false
  end
  rcall = function(command, key, ...)
    if command == 'TIME' then
      return redis.call('TIME')
    end
    if command == 'ZINTERCARD' then -- (its keys follow their count)
      for i = 1, tonumber(key) do
        local named = select(i, ...)
        if not covered(named) then
          error('queuekit: ' .. command .. ' on undeclared key ' .. tostring(named))
        end
      end
      return redis.call(command, key, ...)
    end
    if not covered(key) then
      error('queuekit: ' .. command .. ' on undeclared key ' .. tostring(key))
    end
    return redis.call(command, key, ...)
  end
end
