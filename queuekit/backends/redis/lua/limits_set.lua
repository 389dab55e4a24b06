-- Store a queue's limits (ARGV[1]: their JSON) or remove them (''), and wake the queue's idle
-- workers (looser limits may let them claim). A queue that becomes limited starts refilling
-- its keyless line (the caller runs limits_build until done; claims help too).
-- KEYS: the bound queue keys.  Returns 1 while the keyless line is being refilled, else 0.
bind_keys('limits', 'lheld', 'lbuild', 'kline:', 'kwait', 'kpark', 'lk:served', 'signal')
local was = limited()
if ARGV[1] == '' then
  rcall('DEL', K.limits)
  if rcall('EXISTS', K.lheld) == 0 then
    -- No script keeps the keyless line of a queue without limits: drop it now.
    rcall('DEL', K['kline:'], K.lbuild)
    rcall('ZREM', K.kwait, '')
  end
else
  rcall('SET', K.limits, ARGV[1])
  if not was then
    start_limiting()
  end
end
-- Keys parked as blocked under the old limits may not be under the new ones.
local parked = rcall('ZRANGE', K.kpark, '0', '-1')
for _, key in ipairs(parked) do
  unpark(key)
end
signal(WAKE_TOKENS)
return rcall('EXISTS', K.lbuild)
