-- One batch of the sweep of one queue: cancel, as expired, the jobs that never started and
-- whose expiry passed (see expire_due in _lib.lua).
-- KEYS: the bound queue keys.  ARGV: the most to look at.
-- Returns {how many expired, 1 when due entries are left else 0}.
bind_keys(EXPIRY_KEYS)
local expired, more = expire_due(now_us(), tonumber(ARGV[1]))
return { expired, more and 1 or 0 }
