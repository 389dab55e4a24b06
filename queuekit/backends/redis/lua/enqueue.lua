-- Store new jobs in one queue, all or none (see check_group in _lib.lua for KEYS and ARGV).
-- Returns {'ok', created_at, then per job '+<scheduled_at>' or '=<id of the live job holding
-- its unique key>'}, or {'exists', id} having stored nothing.
bind_keys_at(0, ENQUEUE_KEYS)
local outcome, id = check_group(0)
if not outcome then
  return { 'exists', id }
end
local now = now_us()
local out = { 'ok', stamp(now) }
store_group(0, outcome, 0, now, out)
return out
