-- The worker registry (workers.py): ARGV[1] names the call, ARGV[2] the worker.
-- KEYS[1]: '{<prefix>}:workers', a sorted set of worker ids by when they are forgotten;
-- KEYS[2]: '{<prefix>}:worker:', the prefix of each worker's hash (fields info, started, seen,
-- expires, draining; times in epoch microseconds). Both share the prefix's hash tag.
local now = now_us()
local op, id = ARGV[1], ARGV[2]
local key = KEYS[2] .. id

local function listed(fields_key)
  local expires = rcall('HGET', fields_key, 'expires')
  return expires and tonumber(expires) > now
end

if op == 'beat' then
  -- ARGV[3]: the worker's info; ARGV[4]: its ttl in microseconds. Returns 1 if asked to drain.
  local ttl = tonumber(ARGV[4])
  local silent = rcall('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. int(now), 'LIMIT', 0, 100)
  for _, other in ipairs(silent) do
    if other ~= id then
      rcall('DEL', KEYS[2] .. other)
      rcall('ZREM', KEYS[1], other)
    end
  end
  rcall('HSETNX', key, 'started', int(now))
  rcall('HSET', key, 'info', ARGV[3], 'seen', int(now), 'expires', int(now + ttl))
  rcall('ZADD', KEYS[1], int(now + 2 * ttl), id)
  if rcall('HGET', key, 'draining') == '1' then
    return 1
  end
  return 0
elseif op == 'list' then
  -- Each listed worker as { id, info, started, seen, draining }, times as "seconds.micros".
  local found = {}
  for _, each in ipairs(rcall('ZRANGE', KEYS[1], 0, -1)) do
    local f = rcall('HMGET', KEYS[2] .. each, 'info', 'started', 'seen', 'expires', 'draining')
    if f[4] and tonumber(f[4]) > now then
      found[#found + 1] = { each, f[1], stamp(tonumber(f[2])), stamp(tonumber(f[3])), f[5] or '0' }
    end
  end
  return found
elseif op == 'drain' then
  if listed(key) then
    rcall('HSET', key, 'draining', '1')
    return 1
  end
  return 0
elseif op == 'remove' then
  rcall('DEL', key)
  rcall('ZREM', KEYS[1], id)
  return 0
end
error('queuekit: workers.lua has no call ' .. tostring(op))
