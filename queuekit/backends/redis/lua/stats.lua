-- Counts and signals for one queue.  KEYS: the bound queue keys.  ARGV: success window in us.
-- Returns pending, scheduled, running, completed, failed, dead, cancelled,
-- oldest ready age in us ('' when nothing is ready), completed and dead within the window,
-- expired leases, waiting.
bind_keys(
  'ready',
  'scheduled',
  'leases',
  'status:pending',
  'status:running',
  'status:failed',
  'status:completed',
  'status:dead',
  'status:cancelled',
  'finished:completed',
  'finished:dead',
  'status:waiting'
)
local now = now_us()
local function card(status)
  return rcall('ZCARD', K['status:' .. status])
end
local oldest = nil
-- Due jobs not yet promoted are ready too; the scheduled set's head is the oldest of them.
local head = rcall('ZRANGE', K.scheduled, '0', '0', 'WITHSCORES')
if head[1] and tonumber(head[2]) <= now then
  oldest = tonumber(head[2])
end
-- The ready set runs band by band (priority), each band by due time: visit each band's head.
local first = rcall('ZRANGE', K.ready, '0', '0', 'WITHSCORES')
while first[1] do
  local score = tonumber(first[2])
  local band = math.floor(score / BAND)
  local due = (score - band * BAND) * 1000
  if not oldest or due < oldest then
    oldest = due
  end
  first = rcall('ZRANGEBYSCORE', K.ready, int((band + 1) * BAND), '+inf', 'WITHSCORES', 'LIMIT', '0', '1')
end
local since = '(' .. int(now - tonumber(ARGV[1]))
return {
  card('pending'),
  rcall('ZCOUNT', K.scheduled, '(' .. int(now), '+inf'),
  card('running'),
  card('completed'),
  card('failed'),
  card('dead'),
  card('cancelled'),
  oldest and int(now - oldest) or '',
  rcall('ZCOUNT', K['finished:completed'], since, '+inf'),
  rcall('ZCOUNT', K['finished:dead'], since, '+inf'),
  rcall('ZCOUNT', K.leases, '-inf', int(now)),
  card('waiting'),
}
