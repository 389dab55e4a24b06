-- Activity by minute (activity.py): one hash per queue and minute of the server's clock,
-- '{<prefix>:<queue>}:activity:<minute start, epoch s>', fields e, c, f, d (enqueued,
-- completed, failed, dead), w<i> and r<i> (wait and run times counted in bucket i, from 1),
-- q (the queue's depth: its ready jobs, claimable and due, when the add that created the hash
-- came, at most a cap; only that add counts it, so it is sampled once a minute per queue).
-- Each hash expires `keep` seconds after its minute ends: nothing else forgets them.
-- KEYS: the bound queue keys. ARGV[1] names the call:
--   'add', ARGV[2] keep (s), ARGV[3] the counts as JSON {enqueued, completed, failed, dead,
--   wait, run}, ARGV[4] the depth cap; returns the minute written.
--   'read', ARGV[2] minutes: the queue's minutes among the last ARGV[2] (the current one
--   included), oldest first, each {minute, field, value, field, value...}.
bind_keys('activity:', 'status:pending', 'status:failed', 'scheduled')
local now = now_us()
local minute = math.floor(now / 60000000) * 60
local op = ARGV[1]

if op == 'add' then
  local keep = tonumber(ARGV[2])
  local counts = cjson.decode(ARGV[3])
  local key = K['activity:'] .. minute
  if rcall('EXISTS', key) == 0 then
    -- Ready: claimable (pending or failed) but not scheduled for later, as stats.lua counts
    -- it; the scheduled set's score is the due time in microseconds.
    local later = rcall('ZCOUNT', K.scheduled, '(' .. int(now), '+inf')
    local ready = rcall('ZCARD', K['status:pending']) + rcall('ZCARD', K['status:failed']) - later
    rcall('HSET', key, 'q', math.min(math.max(ready, 0), tonumber(ARGV[4])))
  end
  for field, name in pairs({ e = 'enqueued', c = 'completed', f = 'failed', d = 'dead' }) do
    if counts[name] ~= 0 then
      rcall('HINCRBY', key, field, counts[name])
    end
  end
  for prefix, name in pairs({ w = 'wait', r = 'run' }) do
    for i, count in ipairs(counts[name]) do
      if count ~= 0 then
        rcall('HINCRBY', key, prefix .. i, count)
      end
    end
  end
  rcall('EXPIREAT', key, minute + 60 + math.ceil(keep))
  return minute
end

local found = {}
for at = minute - 60 * (tonumber(ARGV[2]) - 1), minute, 60 do
  local fields = rcall('HGETALL', K['activity:'] .. at)
  if #fields > 0 then
    table.insert(fields, 1, at)
    found[#found + 1] = fields
  end
end
return found
