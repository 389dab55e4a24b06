-- Stop waiting for a job's outcome.  KEYS: the bound queue keys.  ARGV: id.
bind_keys('watchers')
if rcall('HINCRBY', K.watchers, ARGV[1], '-1') <= 0 then
  rcall('HDEL', K.watchers, ARGV[1])
end
return 1
