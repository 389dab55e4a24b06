-- Store a queue's limits (ARGV[1]: their JSON) or remove them (''), and wake the queue's idle
-- workers (looser limits may let them claim). A queue that becomes limited starts refilling
-- its keyless line (the caller runs limits_build until done; claims help too). A queue left
-- with neither limits nor a hold drops its keys' states: without limits they count nothing,
-- and no claim_limited runs to drop them later.
-- KEYS: the bound queue keys.  Returns 1 while the keyless line is being refilled, else 0.
bind_keys('limits', 'lheld', 'lbuild', 'kline:', 'kwait', 'kpark', 'lk:served', 'signal',
  'lk:window', 'lk:started', 'lk:held', 'kidle')
local was = limited()
if ARGV[1] == '' then
  rcall('DEL', K.limits)
  if rcall('EXISTS', K.lheld) == 0 then
    -- No script keeps the keyless line of a queue without limits: drop it now.
    rcall('DEL', K['kline:'], K.lbuild)
    rcall('ZREM', K.kwait, '')
    rcall('DEL', K['lk:window'], K['lk:started'], K['lk:held'], K['lk:served'], K.kidle)
    -- The keys waiting keep their places by their turns, now all gone (0, as lk:served says).
    rcall('ZUNIONSTORE', K.kwait, '1', K.kwait, 'WEIGHTS', '0')
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
