-- One step of refilling the keyless line of a queue that became limited (build_lines).
-- KEYS: the bound queue keys.  Returns 1 when done, else 0.
bind_keys('ready', 'scheduled', 'all', 'job:', 'limits', 'lheld', 'lbuild', 'kline:', 'kwait', 'kpark', 'lk:served')
if not limited() then
  return 1
end
return build_lines() and 1 or 0
