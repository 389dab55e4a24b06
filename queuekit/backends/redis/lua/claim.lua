-- Claim up to `want` of the given ready members, in the order given, skipping any another
-- claimer took first. Claimed jobs are running: attempts + 1, leased, worker and lease token set.
-- KEYS: the bound queue keys, then the job key of each member.
-- ARGV: want, lease_us, worker_id, lease_token, member...
-- Returns {member, {field, value, ...}} per claimed job (none while the queue is paused or
-- limited).
bind_keys(
  'ready',
  'leases',
  'status:pending',
  'status:failed',
  'status:running',
  'paused',
  'limits',
  'lheld',
  'kline:',
  'kwait',
  'kpark',
  'krun',
  'signal',
  EXPIRY_KEYS
)
-- A queue limited since the peek is claimed by claim_limited.lua only.
if rcall('EXISTS', K.paused) == 1 or limited() then
  return {}
end
local want = tonumber(ARGV[1])
local now = now_us()
-- A member that expired since the peek leaves the ready set here, and is skipped below.
local _, expiring = expire_due(now, CLAIM_EXPIRE_BATCH)
if expiring then
  return {}
end
local expiry = now + tonumber(ARGV[2])
local started_at, expires_at = stamp(now), stamp(expiry)
local out = {}
for i = 5, #ARGV do
  if #out >= want then
    break
  end
  local m = ARGV[i]
  if rcall('ZSCORE', K.ready, m) then
    local key = KEYS[NQ + i - 4]
    out[#out + 1] = { m, claim_member(key, m, started_at, expiry, expires_at, ARGV[3], ARGV[4]) }
  end
end
settle_signal()
return out
