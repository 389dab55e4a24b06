-- One batch of the sweep of one queue: cancel, as expired, the jobs that never started and
-- whose expiry passed (see expire_due in _jobs.lua).
-- KEYS: the bound queue keys.  ARGV: the most to look at.
-- Returns {how many expired since the last sweep (by it, or by claims: see expire_due), 1 when
-- due entries are left else 0}, with the decisions their ends made for their dependents
-- (with_decided), parked by expire_due.
bind_keys(EXPIRY_KEYS)
local _, more = expire_due(now_us(), tonumber(ARGV[1]))
for _, d in ipairs(rcall('LRANGE', K.decided, '0', '-1')) do
  DECIDED[#DECIDED + 1] = cjson.decode(d)
end
if #DECIDED > 0 then
  rcall('DEL', K.decided)
end
return with_decided({ tonumber(rcall('GETDEL', K.expired) or 0), more and 1 or 0 })
