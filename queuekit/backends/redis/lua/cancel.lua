-- Cancel a waiting, pending, failed or running job (a running one loses its lease at once).
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
  'watchers',
  FLOW_KEYS,
  'signal',
  'cancels',
  'status:waiting',
  'reach:'
)
local key, done_key, id = KEYS[NQ + 1], KEYS[NQ + 2], ARGV[1]
local f = load(key)
if not f.status then
  return false
end
cancel_job(key, done_key, id, f, now_us())
signal(FREED)
return with_decided(rcall('HGETALL', key))
