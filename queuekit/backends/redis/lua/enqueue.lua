-- Store new jobs in one queue, all or none (see check_group in _lib.lua for KEYS and ARGV),
-- numbered from the queue's own seq (store_group).
-- ARGV: the seq base (µs, the reservation's clock reading), then check_group's ARGV.
-- Returns {'ok', created_at, then per job '+<scheduled_at>' or '=<id of the live job holding
-- its unique key>'}, or {'exists', id} having stored nothing.
bind_keys_at(0, ENQUEUE_KEYS)
local outcome, id = check_group(1)
if not outcome then
  return { 'exists', id }
end
local now = now_us()
local out = { 'ok', stamp(now) }
store_group(1, outcome, now, tonumber(ARGV[1]), out)
return out
