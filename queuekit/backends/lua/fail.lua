-- Record a failed attempt: retry later (failed) while attempts are left, else dead.
-- KEYS: the bound queue keys, job key, done key.  ARGV: id, attempt, error, retry_us ('' = no retry).
-- Returns the new status, or '' when the lease was lost.
bind_keys(
  'ready',
  'scheduled',
  'leases',
  'status:running',
  'status:failed',
  'status:dead',
  'finished:dead',
  'unique',
  'watchers',
  'signal'
)
local key, done_key, id = KEYS[NQ + 1], KEYS[NQ + 2], ARGV[1]
local f = load(key)
if f.status ~= 'running' or f.attempts ~= ARGV[2] then
  return ''
end
local now = now_us()
local due = ARGV[4] ~= '' and now + tonumber(ARGV[4])
local status = fail_attempt(key, done_key, id, f, ARGV[3], due, now)
if status == 'failed' then
  signal(1)
end
return status
