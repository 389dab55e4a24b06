-- Extend the leases of attempts that still hold their jobs (running, same lease token).
-- KEYS: the bound queue keys, then one job key per attempt.
-- ARGV: lease_us, then id, lease_token per job.
-- Returns the 1-based positions of the attempts that lost their job.
bind_keys('leases')
local now = now_us()
local expiry = now + tonumber(ARGV[1])
local expires_at, score = stamp(expiry), int(expiry)
local lost = {}
for i = 1, (#ARGV - 1) / 2 do
  local id, token = ARGV[2 * i], ARGV[2 * i + 1]
  local key = KEYS[NQ + i]
  if holds(load(key), token) then
    rcall('HSET', key, 'lease_expires_at', expires_at)
    rcall('ZADD', K.leases, score, id)
  else
    lost[#lost + 1] = i
  end
end
return lost
