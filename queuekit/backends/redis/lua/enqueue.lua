-- Store new jobs in one queue, all or none (see check_group in _enqueue.lua for KEYS and ARGV),
-- numbered from the queue's own seq (store_group), and link those with parents (link_new).
-- ARGV: the seq base (µs, the reservation's clock reading), then check_group's ARGV.
-- Returns {'ok', created_at, then per job its outcome (see link_new), or the fields of the job
-- holding its unique or debounce key (answer_holders)}; or, having stored nothing,
-- {'exists', id} or {'unknown', id} (a parent neither stored nor stored earlier in the call).
bind_keys_at(0, ENQUEUE_KEYS)
local now = now_us()
local outcome, id = check_group(1, now)
if not outcome then
  return { 'exists', id }
end
local known, parent = check_parents(1, outcome)
if not known then
  return { 'unknown', parent }
end
local out = { 'ok', stamp(now) }
store_group(1, outcome, now, tonumber(ARGV[1]), out)
link_new(now, out)
answer_holders(now, out)
return out
