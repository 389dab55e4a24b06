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
local started_at, expires_at = stamp(now), stamp(expiry)
local out = {}
for i = 4, #ARGV do
  if #out >= want then
    break
  end
  local m = ARGV[i]
  if rcall('ZSCORE', K.ready, m) then
    out[#out + 1] = { m, claim_member(KEYS[NQ + i - 3], m, started_at, expiry, expires_at, ARGV[3]) }
  end
end
return out
