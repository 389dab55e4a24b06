-- Complete a job if this attempt still holds it.
-- KEYS: the bound queue keys, job key, done key.  ARGV: id, attempt, has_result ('1'/'0'), result.
-- Returns 1, or 0 when the lease was lost.
bind_keys(
  'leases',
  'status:running',
  'status:completed',
  'finished:completed',
  'unique',
  'watchers'
)
local key, done_key, id = KEYS[NQ + 1], KEYS[NQ + 2], ARGV[1]
local f = load(key)
if f.status ~= 'running' or f.attempts ~= ARGV[2] then
  return 0
end
if ARGV[3] == '1' then
  rcall('HSET', key, 'result', ARGV[4])
else
  rcall('HDEL', key, 'result')
end
finish(key, done_key, id, f, 'completed', now_us())
return 1
