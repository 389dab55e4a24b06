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
rcall('HSET', key, 'last_error', ARGV[3])
if ARGV[4] == '' or tonumber(f.attempts) >= tonumber(f.max_attempts) then
  finish(key, done_key, id, f, 'dead', now)
  return 'dead'
end
local due = now + tonumber(ARGV[4])
rcall('HSET', key, 'status', 'failed', 'scheduled_at', stamp(due))
rcall('HDEL', key, 'lease_expires_at', 'worker_id')
rcall('ZREM', K.leases, id)
move(id, f.seq, 'running', 'failed')
make_claimable(member(f.priority, f.seq, id), due, now)
signal(1)
return 'failed'
