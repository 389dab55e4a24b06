-- Store new jobs in one queue, all or none.
-- KEYS: the bound queue keys, then one job key per job.
-- ARGV: queue, count, then per job: id, seq, type, payload, priority, max_attempts,
--       delay_us, run_at_us ('' = use delay), unique_key ('' = none), taken ('1' = the id
--       belongs to a job of another queue), headers (JSON text, '' = none).
-- Returns {'ok', created_at, then per job '+<scheduled_at>' or '=<id of the live job holding
-- its unique key>'}, or {'exists', id} having stored nothing.
bind_keys('ready', 'scheduled', 'all', 'status:pending', 'unique', 'signal')
local queue, n = ARGV[1], tonumber(ARGV[2])
local F = 11
local holders = {}
local outcome = {}
for i = 1, n do
  local b = 2 + (i - 1) * F
  local id, unique_key, taken = ARGV[b + 1], ARGV[b + 9], ARGV[b + 10]
  local holder = false
  if unique_key ~= '' then
    holder = holders[unique_key] or rcall('HGET', K.unique, unique_key)
  end
  if holder then
    outcome[i] = '=' .. holder
  elseif taken == '1' or rcall('EXISTS', KEYS[NQ + i]) == 1 then
    return { 'exists', id }
  else
    outcome[i] = true
    if unique_key ~= '' then
      holders[unique_key] = id
    end
  end
end

local now = now_us()
local created_at = stamp(now)
local created = 0
local out = { 'ok', created_at }
for i = 1, n do
  if outcome[i] == true then
    local b = 2 + (i - 1) * F
    local id, seq, priority = ARGV[b + 1], ARGV[b + 2], ARGV[b + 5]
    local due = ARGV[b + 8] ~= '' and tonumber(ARGV[b + 8]) or now + tonumber(ARGV[b + 7])
    local scheduled_at = stamp(due)
    local key = KEYS[NQ + i]
    rcall('HSET', key,
      'id', id, 'queue', queue, 'type', ARGV[b + 3], 'payload', ARGV[b + 4],
      'priority', priority, 'status', 'pending', 'attempts', '0',
      'max_attempts', ARGV[b + 6], 'created_at', created_at, 'scheduled_at', scheduled_at,
      'seq', seq)
    local unique_key = ARGV[b + 9]
    if unique_key ~= '' then
      rcall('HSET', key, 'unique_key', unique_key)
      rcall('HSET', K.unique, unique_key, id)
    end
    if ARGV[b + 11] ~= '' then
      rcall('HSET', key, 'headers', ARGV[b + 11])
    end
    rcall('ZADD', K.all, seq, id)
    rcall('ZADD', K['status:pending'], seq, id)
    make_claimable(member(priority, seq, id), due, now)
    created = created + 1
    out[#out + 1] = '+' .. scheduled_at
  else
    out[#out + 1] = outcome[i]
  end
end
if created > 0 then
  signal(created)
end
return out
