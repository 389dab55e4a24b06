-- Extend the leases of attempts that still hold their jobs.
-- KEYS: the bound queue keys, then one job key per attempt.  ARGV: lease_us, then id, attempt per job.
-- Returns the 1-based positions of the attempts that lost their job.
bind_keys('leases')
local now = now_us()
local expiry = now + tonumber(ARGV[1])
local expires_at, score = stamp(expiry), int(expiry)
local lost = {}
for i = 1, (#ARGV - 1) / 2 do
  local id, attempt = ARGV[2 * i], ARGV[2 * i + 1]
  local key = KEYS[NQ + i]
  local v = rcall('HMGET', key, 'status', 'attempts')
  if v[1] == 'running' and v[2] == attempt then
    rcall('HSET', key, 'lease_expires_at', expires_at)
    rcall('ZADD', K.leases, score, id)
  else
    lost[#lost + 1] = i
  end
end
return lost
