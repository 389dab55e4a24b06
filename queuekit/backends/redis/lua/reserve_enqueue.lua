-- reserve.lua, name_queues.lua and enqueue.lua in one call, for a single Redis server, where
-- one script may use keys of several slots (a Cluster runs them apart, one slot each).
-- KEYS: the queue-name set; then per queue ENQUEUE_KEYS, its job keys, then the index shard
--       of each of its jobs (in the same order).
-- ARGV: how many queues, how many names to add to the set, those names, then per queue its
--       enqueue.lua ARGV (see check_group), each job's offset being its place in the call.
-- Returns {'ok', created_at, outcomes of the first queue's jobs, then of the next, ...} as
-- enqueue.lua does; or, having written nothing, {'exists', id}, {'unknown', id} (a missing
-- parent), or {'fallback'} when an id is indexed under another queue (the two-step path finds
-- out whether that job still exists).
local names = tonumber(ARGV[2])
local now = now_us()
local groups = {}
local at, b = 1, 2 + names
for g = 1, tonumber(ARGV[1]) do
  bind_keys_at(at, ENQUEUE_KEYS)
  local queue, n = ARGV[b + 1], tonumber(ARGV[b + 2])
  for i = 1, n do
    local owner = rcall('HGET', KEYS[NQ + n + i], ARGV[job_args(b, i) + 1])
    if owner and owner ~= queue then
      return { 'fallback' }
    end
  end
  local outcome, id = check_group(b, now)
  if not outcome then
    return { 'exists', id }
  end
  groups[g] = { at, b, outcome }
  at, b = NQ + 2 * n, b + 2 + n * ENQUEUE_FIELDS
end
-- A parent may be a job of any group earlier in the call: checked once every group is.
for _, group in ipairs(groups) do
  local at, b, outcome = unpack(group)
  bind_keys_at(at, ENQUEUE_KEYS)
  local known, parent = check_parents(b, outcome)
  if not known then
    return { 'unknown', parent }
  end
end

if names > 0 then
  rcall('SADD', KEYS[1], unpack(ARGV, 3, 2 + names))
end
local out = { 'ok', stamp(now) }
for _, group in ipairs(groups) do
  local at, b, outcome = unpack(group)
  local queue, n = ARGV[b + 1], tonumber(ARGV[b + 2])
  bind_keys_at(at, ENQUEUE_KEYS)
  for i, result in ipairs(outcome) do
    if result == true then
      reserve_id(KEYS[NQ + n + i], ARGV[job_args(b, i) + 1], queue, queue)
    end
  end
  store_group(b, outcome, now, now, out)
end
link_new(now, out)
answer_holders(now, out)
return out
