-- One batch of a bulk operation in one queue: replay, cancel, run now or delete (as
-- ready_now.lua, cancel.lua and delete.lua do) the jobs in one status, of one task type if
-- given, whose seq is above `after`, oldest first, looking at `limit` of them at most.
-- KEYS: the bound queue keys ('job:' and 'done:' are the prefixes of the job and done keys).
-- ARGV: action ('replay', 'cancel', 'run_now' or 'delete'), status, type ('' = any), after, limit.
-- Returns {the seq of the last job looked at, or '' when fewer than `limit` were left; then
-- the ids of the jobs changed}.
bind_keys(
  'ready',
  'scheduled',
  'leases',
  'all',
  'status:pending',
  'status:running',
  'status:failed',
  'status:completed',
  'status:dead',
  'status:cancelled',
  'finished:completed',
  'finished:dead',
  'finished:cancelled',
  'unique',
  'signal',
  'watchers',
  'type:',
  'job:',
  'done:',
  FLOW_KEYS,
  'cancels',
  'status:waiting',
  'workflow:',
  'batch:',
  'debounce',
  'reach:'
)
local action, status, job_type = ARGV[1], ARGV[2], ARGV[3]
local after, limit = ARGV[4], tonumber(ARGV[5])
local seen = rcall('ZRANGEBYSCORE', K['status:' .. status], '(' .. after, '+inf', 'WITHSCORES',
  'LIMIT', '0', int(limit))
local now = now_us()
local out = { #seen == 2 * limit and seen[#seen] or '' }
for i = 1, #seen, 2 do
  local id = seen[i]
  local key, done_key = K['job:'] .. id, K['done:'] .. id
  local f = load(key)
  if f.status == status and (job_type == '' or rcall('HGET', key, 'type') == job_type) then
    if repair_job(action, key, done_key, id, f, now) then
      out[#out + 1] = id
    end
  end
end
if action == 'replay' or action == 'run_now' then
  signal(#out - 1)
end
signal(FREED)
return with_decided(out)
