-- Make one job ready to run now, by `action`: 'replay' resets a dead or cancelled job to
-- pending with attempts and worker cleared, unless another job holds its unique or debounce key;
-- 'run_now' makes a pending job scheduled later, or a failed one waiting for its retry, due
-- now. Either wakes an idle worker as an enqueue does; any other job is left as it is.
-- KEYS: the bound queue keys (those replay needs: run_now's are among them), job key, done
-- key.  ARGV: id, action.
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
  'lk:served',
  'job:',
  'debounce',
  'reach:'
)
local key, done_key, id, action = KEYS[NQ + 1], KEYS[NQ + 2], ARGV[1], ARGV[2]
local f = load(key)
if not f.status then
  return false
end
if repair_job(action, key, done_key, id, f, now_us()) then
  signal(1)
end
return with_decided(rcall('HGETALL', key))
