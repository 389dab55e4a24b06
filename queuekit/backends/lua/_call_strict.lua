-- queuekit: how scripts call Redis, checking that every key touched was passed in KEYS.
-- The test suite runs with this prelude; a script touching an undeclared key fails.
local rcall
do
  local declared = {}
  for _, key in ipairs(KEYS) do
    declared[key] = true
  end
  rcall = function(command, key, ...)
    if command == 'TIME' then
      return redis.call('TIME')
    end
    if not declared[key] then
      error('queuekit: ' .. command .. ' on undeclared key ' .. tostring(key))
    end
    return redis.call(command, key, ...)
  end
end
