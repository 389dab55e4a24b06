-- Return a running job to pending in delay_us, without counting the attempt.
-- KEYS: the bound queue keys, job key.  ARGV: id, attempt, delay_us.
-- Returns 1, or 0 when the lease was lost.
bind_keys('ready', 'scheduled', 'leases', 'status:running', 'status:pending', 'signal')
local key, id = KEYS[NQ + 1], ARGV[1]
local f = load(key)
if f.status ~= 'running' or f.attempts ~= ARGV[2] then
  return 0
end
local now = now_us()
local due = now + tonumber(ARGV[3])
rcall('HINCRBY', key, 'attempts', '-1')
rcall('HSET', key, 'status', 'pending', 'scheduled_at', stamp(due))
rcall('HDEL', key, 'lease_expires_at', 'worker_id')
rcall('ZREM', K.leases, id)
move(id, f.seq, 'running', 'pending')
make_claimable(member(f.priority, f.seq, id), due, now)
signal(1)
return 1
