-- Promote due scheduled jobs to ready, then show the head of the ready line (none while the
-- queue is paused).
-- KEYS: the bound queue keys.  ARGV: how many heads.
-- Returns {more, {member, score, ...}}; more = 1 when due jobs are still left to promote.
bind_keys('ready', 'scheduled', 'paused')
if rcall('EXISTS', K.paused) == 1 then
  return { 0, {} }
end
local BATCH = 1000
local now = now_us()
local due = rcall('ZRANGEBYSCORE', K.scheduled, '-inf', int(now), 'WITHSCORES', 'LIMIT', '0', int(BATCH))
for i = 1, #due, 2 do
  local m = due[i]
  rcall('ZADD', K.ready, ready_score(member_priority(m), tonumber(due[i + 1])), m)
  rcall('ZREM', K.scheduled, m)
end
local more = 0
if #due == 2 * BATCH then
  more = 1
end
return { more, rcall('ZRANGE', K.ready, '0', int(tonumber(ARGV[1]) - 1), 'WITHSCORES') }
