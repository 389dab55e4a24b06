-- Expire and promote due jobs, then show the head of the ready line (none while the queue is
-- paused).
-- KEYS: the bound queue keys.  ARGV: how many heads.
-- Returns {more, {member, score, ...}, limited}; more = 1 when due jobs are still left to
-- promote; limited = 1 (and no heads) when the queue has limits: claim_limited.lua claims it.
bind_keys('ready', 'scheduled', 'paused', 'limits', 'lheld', EXPIRY_KEYS)
if rcall('EXISTS', K.paused) == 1 then
  return { 0, {}, 0 }
end
if limited() then
  return { 0, {}, 1 }
end
local now = now_us()
local _, expiring = expire_due(now, CLAIM_EXPIRE_BATCH)
if expiring then
  return { 1, {}, 0 }
end
local more = promote_due(now) and 1 or 0
return { more, rcall('ZRANGE', K.ready, '0', int(tonumber(ARGV[1]) - 1), 'WITHSCORES'), 0 }
