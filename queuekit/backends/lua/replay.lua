-- Reset a dead or cancelled job to pending with attempts cleared, unless a live job now
-- holds its unique key. Any other status is left as it is.
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
  'signal'
)
local key, id = KEYS[NQ + 1], ARGV[1]
local f = load(key)
if not f.status then
  return false
end
local finished = f.status == 'dead' or f.status == 'cancelled'
if finished and not (f.unique_key and rcall('HGET', K.unique, f.unique_key)) then
  local now = now_us()
  rcall('HSET', key, 'status', 'pending', 'attempts', '0', 'scheduled_at', stamp(now))
  rcall('HDEL', key, 'started_at', 'finished_at', 'result')
  rcall('ZREM', K['finished:' .. f.status], id)
  move(id, f.seq, f.status, 'pending')
  make_claimable(member(f.priority, f.seq, id), now, now)
  if f.unique_key then
    rcall('HSET', K.unique, f.unique_key, id)
  end
  signal(1)
end
return rcall('HGETALL', key)
