-- Microseconds until a job of this queue may be claimable: 0 if one is ready now, the
-- wait for the earliest scheduled job, or -1 when there is none or the queue is paused.  KEYS: the bound queue keys.
bind_keys('ready', 'scheduled', 'paused')
if rcall('EXISTS', K.paused) == 1 then
  return '-1'
end
if rcall('ZCARD', K.ready) > 0 then
  return '0'
end
local head = rcall('ZRANGE', K.scheduled, '0', '0', 'WITHSCORES')
if not head[1] then
  return '-1'
end
return int(math.max(0, tonumber(head[2]) - now_us()))
