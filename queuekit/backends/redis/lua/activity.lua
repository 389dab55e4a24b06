-- Activity by minute (activity.py): one hash per queue and minute of the server's clock,
-- '{<prefix>:<queue>}:activity:<minute start, epoch s>', fields e, c, f, d (enqueued,
-- completed, failed, dead), w<i> and r<i> (wait and run times counted in bucket i, from 1).
-- Each hash expires `keep` seconds after its minute ends: nothing else forgets them.
-- KEYS: the bound queue key (a prefix). ARGV[1] names the call:
--   'add', ARGV[2] keep (s), ARGV[3] the counts as JSON {enqueued, completed, failed, dead,
--   wait, run}; returns the minute written.
--   'read', ARGV[2] minutes: the queue's minutes among the last ARGV[2] (the current one
--   included), oldest first, each {minute, field, value, field, value...}.
bind_keys('activity:')
local minute = math.floor(now_us() / 60000000) * 60
local op = ARGV[1]

if op == 'add' then
  local keep = tonumber(ARGV[2])
  local counts = cjson.decode(ARGV[3])
  local key = K['activity:'] .. minute
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
  if rcall('EXISTS', key) == 1 then
    rcall('EXPIREAT', key, minute + 60 + math.ceil(keep))
  end
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
