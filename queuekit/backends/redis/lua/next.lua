-- Microseconds until a job of this queue may be claimable: 0 if one is ready now, the
-- wait for the earliest scheduled job, or -1 when there is none or the queue is paused.
-- A limited queue's due jobs may be blocked by its limits, so they are no reason to return
-- at once (-1: wait for a wake-up, which a freed slot or a change of limits pushes, or the
-- timeout).  KEYS: the bound queue keys.
bind_keys('ready', 'scheduled', 'paused', 'limits', 'lheld')
if rcall('EXISTS', K.paused) == 1 then
  return '-1'
end
local blockable = limited()
if not blockable and rcall('ZCARD', K.ready) > 0 then
  return '0'
end
local head = rcall('ZRANGE', K.scheduled, '0', '0', 'WITHSCORES')
if not head[1] then
  return '-1'
end
local wait = tonumber(head[2]) - now_us()
if blockable and wait <= 0 then
  return '-1'
end
return int(math.max(0, wait))
