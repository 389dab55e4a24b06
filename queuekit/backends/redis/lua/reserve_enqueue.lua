-- reserve.lua and enqueue.lua in one call, for a single Redis server, where one script may
-- use keys of several slots (a Cluster runs the two apart, one slot each).
-- KEYS: index hash, queue-name set, seq counter; then per queue ENQUEUE_KEYS and its job keys.
-- ARGV: how many seqs to take, how many queues, then per queue its enqueue.lua ARGV (see
--       check_group), each seq being the job's offset from the first seq taken, taken '0'.
-- Returns {'ok', created_at, outcomes of the first queue's jobs, then of the next, ...} as
-- enqueue.lua does; or, having written nothing, {'exists', id}, or {'fallback'} when an id
-- is indexed under another queue (the two-step path finds out whether that job still exists).
local index, queues, seqs = KEYS[1], KEYS[2], KEYS[3]
local groups = {}
local at, b = 3, 2
for g = 1, tonumber(ARGV[2]) do
  bind_keys_at(at, ENQUEUE_KEYS)
  local queue, n = ARGV[b + 1], tonumber(ARGV[b + 2])
  for i = 1, n do
    local owner = rcall('HGET', index, ARGV[job_args(b, i) + 1])
    if owner and owner ~= queue then
      return { 'fallback' }
    end
  end
  local outcome, id = check_group(b)
  if not outcome then
    return { 'exists', id }
  end
  groups[g] = { at, b, outcome }
  at, b = NQ + n, b + 2 + n * ENQUEUE_FIELDS
end

local first = take_seqs(seqs, tonumber(ARGV[1]))
local now = now_us()
local out = { 'ok', stamp(now) }
for _, group in ipairs(groups) do
  local at, b, outcome = unpack(group)
  local queue = ARGV[b + 1]
  bind_keys_at(at, ENQUEUE_KEYS)
  rcall('SADD', queues, queue)
  for i, result in ipairs(outcome) do
    if result == true then
      reserve_id(index, ARGV[job_args(b, i) + 1], queue, queue)
    end
  end
  store_group(b, outcome, first, now, out)
end
return out
