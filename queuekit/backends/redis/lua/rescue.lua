-- Fail running jobs whose lease expired ("lease expired") by the rule of Backend.rescue
-- (backend.py): retry now while attempts are left, else dead. Jobs whose lease was renewed
-- meanwhile are left alone.
-- KEYS: the bound queue keys, then job key and done key per id.  ARGV: id...
-- Returns {how many jobs were rescued to run again, how many went dead}.
bind_keys(
  'ready',
  'scheduled',
  'leases',
  'status:running',
  'status:failed',
  'status:dead',
  'finished:dead',
  'unique',
  'watchers',
  'signal',
  FLOW_KEYS,
  'reach:'
)
local now = now_us()
local rescued, retried = 0, 0
for i, id in ipairs(ARGV) do
  local key, done_key = KEYS[NQ + 2 * i - 1], KEYS[NQ + 2 * i]
  local score = rcall('ZSCORE', K.leases, id)
  if score and tonumber(score) <= now then
    local f = load(key)
    if f.status == 'running' then
      rescued = rescued + 1
      local due = tonumber(f.attempts) < tonumber(f.max_attempts) and now
      if fail_attempt(key, done_key, id, f, 'lease expired', due, now) == 'failed' then
        retried = retried + 1
      end
    else
      rcall('ZREM', K.leases, id)
    end
  end
end
signal(retried)
signal(FREED)
return with_decided({ retried, rescued - retried })
