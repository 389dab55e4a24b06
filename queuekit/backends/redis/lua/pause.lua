-- Pause (ARGV[1] = '1') or resume ('0') claims from this queue. A paused queue still takes
-- jobs; peek, claim and next see the `paused` key and offer nothing. Resuming wakes idle
-- workers blocked on the signal list.  KEYS: the bound queue keys.  Returns 1 if it changed.
bind_keys('paused', 'signal')
if ARGV[1] == '1' then
  if rcall('SET', K.paused, '1', 'NX') then
    return 1
  end
  return 0
end
if rcall('DEL', K.paused) == 1 then
  signal(WAKE_TOKENS)
  return 1
end
return 0
