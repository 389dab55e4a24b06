-- Make a pending job scheduled later, or a failed one waiting for its retry, due now, and
-- wake an idle worker as an enqueue does. Any other job is left as it is.
-- KEYS: the bound queue keys, job key.  ARGV: id.
-- Returns the job's fields as they now are, or nil when it does not exist.
bind_keys(
  'ready',
  'scheduled',
  'signal',
  'limits',
  'lheld',
  'kline:',
  'kwait',
  'kpark',
  'lk:served'
)
local key, id = KEYS[NQ + 1], ARGV[1]
local f = load(key)
if not f.status then
  return false
end
if run_job_now(key, id, f, now_us()) then
  signal(1)
end
return rcall('HGETALL', key)
