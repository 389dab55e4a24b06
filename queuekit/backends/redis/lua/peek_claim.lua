-- peek.lua and claim.lua in one call, for a single Redis server: promote due jobs, merge the
-- ready heads of several queues in claim order and claim the best `limit`, all at once, so
-- no other claimer can come between. The job keys are not known before the script reads the
-- ready sets, so each queue passes the prefix of its job keys instead (its 'job:' key): the
-- script touches no key outside the queues' slots.
-- KEYS: per queue CLAIM_KEYS.  ARGV: limit, lease_us, worker_id, lease_token, then per queue
-- its free slots.
-- Returns {'ok', {the 1-based positions of the limited queues, which it leaves to
-- claim_limited.lua}, then {member, {field, value, ...}} per claimed job, in claim order},
-- or {'fallback'} when a queue has more due jobs than one call promotes or expires (peek
-- loops over them).
local limit, worker_id, lease_token = tonumber(ARGV[1]), ARGV[3], ARGV[4]
local now = now_us()
local heads = {}
local limited_queues = {}
for q = 1, #ARGV - 4 do
  bind_keys_at((q - 1) * #CLAIM_KEYS, CLAIM_KEYS)
  if limited() then
    limited_queues[#limited_queues + 1] = q
  elseif rcall('EXISTS', K.paused) == 0 then
    local _, expiring = expire_due(now, CLAIM_EXPIRE_BATCH)
    if expiring or promote_due(now) then
      return { 'fallback' }
    end
    local want = math.min(tonumber(ARGV[4 + q]), limit)
    local flat = rcall('ZRANGE', K.ready, '0', int(want - 1), 'WITHSCORES')
    for i = 1, #flat, 2 do
      heads[#heads + 1] = { tonumber(flat[i + 1]), flat[i], q }
    end
  end
end
-- Claim order: score (priority, then due time), then member (seq); at most `want` heads of
-- each queue were read, so each queue's slots are respected.
table.sort(heads, function(x, y)
  if x[1] ~= y[1] then
    return x[1] < y[1]
  end
  return x[2] < y[2]
end)
local expiry = now + tonumber(ARGV[2])
local started_at, expires_at = stamp(now), stamp(expiry)
local out = { 'ok', limited_queues }
local claimed_from, settle = {}, {}
for i = 1, math.min(#heads, limit) do
  local m, q = heads[i][2], heads[i][3]
  bind_keys_at((q - 1) * #CLAIM_KEYS, CLAIM_KEYS)
  local key = K['job:'] .. string.sub(m, 21)
  local fields = claim_member(key, m, started_at, expiry, expires_at, worker_id, lease_token)
  out[#out + 1] = { m, fields }
  if not claimed_from[q] then
    claimed_from[q] = true
    settle[#settle + 1] = q
  end
end
-- In claim order (a list, not the set's keys: a script's effects never depend on a table's
-- iteration order).
for _, q in ipairs(settle) do
  bind_keys_at((q - 1) * #CLAIM_KEYS, CLAIM_KEYS)
  settle_signal()
end
return out
