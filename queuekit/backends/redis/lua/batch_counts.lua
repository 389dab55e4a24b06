-- How many jobs of one batch the queue holds in each status, read at one moment: the size of
-- the batch's set's intersection with each status set, counted by Redis (ZINTERCARD walks the
-- smaller set), so a batch of 100,000 jobs costs no Lua loop.
-- KEYS: the bound queue keys (one status set per status), then the batch's set.
-- Returns one count per status set, in KEYS order.
bind_keys('status:waiting', 'status:pending', 'status:running', 'status:failed',
  'status:completed', 'status:dead', 'status:cancelled')
local batch = KEYS[NQ + 1]
local out = {}
local found = rcall('EXISTS', batch) == 1
for i = 1, NQ do
  out[i] = found and rcall('ZINTERCARD', '2', batch, KEYS[i]) or 0
end
return out
