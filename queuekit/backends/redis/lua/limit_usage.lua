-- How much of a queue's limits is in use now (see LimitUsage in queuekit/limits.py).
-- KEYS: the bound queue keys.
-- Returns {limits JSON ('' = none), running, now_us, period_us, window end ('' without a
-- rate), started in the window, queue held until ('' when not held), {key, held until, ...}
-- of the held keys, {key, running, ...} of the 100 busiest keys}.
bind_keys('limits', 'status:running', 'krun', 'lk:window', 'lk:started', 'lk:held')
local limits, raw = read_limits()
local now = now_us()
local window_end, started = '', 0
if limits.rate then
  local window = math.floor(now / limits.period_us) * limits.period_us
  window_end = int(window + limits.period_us)
  if tonumber(rcall('HGET', K['lk:window'], '') or '0') == window then
    started = tonumber(rcall('HGET', K['lk:started'], '') or '0')
  end
end
local queue_held = ''
local held = {}
local all_held = rcall('HGETALL', K['lk:held'])
for i = 1, #all_held, 2 do
  if tonumber(all_held[i + 1]) > now then
    if all_held[i] == '' then
      queue_held = all_held[i + 1]
    else
      held[#held + 1] = all_held[i]
      held[#held + 1] = all_held[i + 1]
    end
  end
end
return {
  raw or '',
  rcall('ZCARD', K['status:running']),
  int(now),
  int(limits.period_us),
  window_end,
  int(started),
  queue_held,
  held,
  rcall('ZREVRANGE', K.krun, '0', '99', 'WITHSCORES'),
}
