-- Reset a dead or cancelled job to pending with attempts and worker cleared, unless a live job
-- now holds its unique key. Any other status is left as it is.
-- KEYS: the bound queue keys, job key.  ARGV: id.
-- Returns the job's fields as they now are, or nil when it does not exist.
bind_keys(
  'ready',
  'scheduled',
  'status:pending',
  'status:dead',
  'status:cancelled',
  'finished:dead',
  'finished:cancelled',
  'unique',
  'signal',
  'limits',
  'lheld',
  'kline:',
  'kwait',
  'kpark',
  'kopen:',
  'krun',
  'lk:served'
)
local key, id = KEYS[NQ + 1], ARGV[1]
local f = load(key)
if not f.status then
  return false
end
if replay_job(key, id, f, now_us()) then
  signal(1)
end
return rcall('HGETALL', key)
