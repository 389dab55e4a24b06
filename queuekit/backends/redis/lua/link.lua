-- Link a stored waiting job to more of its parents: the rest of a job whose edges are more
-- than one enqueue call takes (enqueue.py), in calls that follow the one that stored it, as
-- link_edges in _enqueue.lua says. Every parent must exist (checked first: none is linked
-- otherwise).
-- KEYS: the bound queue keys, then the job's key.  ARGV: its id, its edges (joined by ',').
-- Returns {'ok', the job's fields}, or {'unknown', id of a parent that does not exist}.
bind_keys(
  'ready',
  'scheduled',
  'status:pending',
  'status:waiting',
  'status:cancelled',
  'finished:cancelled',
  'unique',
  'watchers',
  'signal',
  'expiring',
  FLOW_KEYS,
  'reach:'
)
local key, id, edges = KEYS[NQ + 1], ARGV[1], ARGV[2]
local parsed = parse_edges(prefix_of(key, id), edges)
for e = 1, #parsed, EDGE do
  if not parent_status(parsed[e + 4]) then
    return { 'unknown', parsed[e + 1] }
  end
end
local now = now_us()
link_edges(key, id, parsed, now, rcall('HGET', key, 'status'))
push_dependents()
DECIDED = {} -- (the job is announced as the enqueue returns it)
wake_released()
return { 'ok', rcall('HGETALL', key) }
