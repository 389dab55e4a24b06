-- Cancel a pending, failed or running job (a running one loses its lease at once).
-- KEYS: the bound queue keys, job key, done key.  ARGV: id.
-- Returns the job's fields as they now are, or nil when it does not exist.
bind_keys(
  'ready',
  'scheduled',
  'leases',
  'status:pending',
  'status:failed',
  'status:running',
  'status:cancelled',
  'finished:cancelled',
  'unique',
  'watchers'
)
local key, done_key, id = KEYS[NQ + 1], KEYS[NQ + 2], ARGV[1]
local f = load(key)
if not f.status then
  return false
end
if f.status == 'pending' or f.status == 'failed' or f.status == 'running' then
  finish(key, done_key, id, f, 'cancelled', now_us())
end
return rcall('HGETALL', key)
