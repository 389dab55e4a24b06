-- Claim up to `want` of the given ready members, in the order given, skipping any another
-- claimer took first. Claimed jobs are running: attempts + 1, leased, worker set.
-- KEYS: the bound queue keys, then the job key of each member.
-- ARGV: want, lease_us, worker_id, member...
-- Returns {member, {field, value, ...}} per claimed job.
bind_keys('ready', 'leases', 'status:pending', 'status:failed', 'status:running', 'paused')
if rcall('EXISTS', K.paused) == 1 then
  return {}
end
local want = tonumber(ARGV[1])
local now = now_us()
local expiry = now + tonumber(ARGV[2])
local started_at, expires_at, score = stamp(now), stamp(expiry), int(expiry)
local out = {}
for i = 4, #ARGV do
  if #out >= want then
    break
  end
  local m = ARGV[i]
  if rcall('ZSCORE', K.ready, m) then
    local key = KEYS[NQ + i - 3]
    local id = string.sub(m, 21)
    local v = rcall('HMGET', key, 'status', 'seq')
    rcall('ZREM', K.ready, m)
    move(id, v[2], v[1], 'running')
    rcall('ZADD', K.leases, score, id)
    rcall('HINCRBY', key, 'attempts', '1')
    rcall('HSET', key, 'status', 'running', 'started_at', started_at,
      'lease_expires_at', expires_at, 'worker_id', ARGV[3])
    out[#out + 1] = { m, rcall('HGETALL', key) }
  end
end
return out
