-- Delete jobs that are not running: every one given (delete_job), or those in one terminal
-- status that finished long enough ago (prune), but for those that hold their unique key
-- until a unique_until still to come.
-- KEYS: the bound queue keys, then job key and done key per id.
-- ARGV: status ('' = any but running), older_than_us ('' = any age), id...
-- Returns the ids deleted, the ids left because they are running, and how many were left for
-- their unique key.
bind_keys(
  'ready',
  'scheduled',
  'all',
  'status:pending',
  'status:failed',
  'status:completed',
  'status:dead',
  'status:cancelled',
  'finished:completed',
  'finished:dead',
  'finished:cancelled',
  'unique',
  'watchers',
  'type:',
  FLOW_KEYS,
  'status:waiting',
  'workflow:',
  'batch:',
  'debounce',
  'reach:'
)
local status, older = ARGV[1], ARGV[2]
local now = nil
local deleted, running, held = {}, {}, 0
for i = 3, #ARGV do
  local id, j = ARGV[i], i - 2
  local key, done_key = KEYS[NQ + 2 * j - 1], KEYS[NQ + 2 * j]
  local f = load(key)
  local ok = f.status and (status == '' or f.status == status)
  if ok and older ~= '' then
    now = now or now_us()
    local finished_key = K['finished:' .. f.status]
    local finished = finished_key and rcall('ZSCORE', finished_key, id)
    ok = finished and tonumber(finished) <= now - tonumber(older)
    local v = ok and f.unique_key and rcall('HMGET', key, 'unique_until', 'unique_states')
    if v and v[1] and stamp_us(v[1]) > now and v[2] and listed(v[2], f.status) then
      ok, held = false, held + 1
    end
  end
  if ok and delete_job(key, done_key, id, f) then
    deleted[#deleted + 1] = id
  elseif ok and f.status == 'running' then
    running[#running + 1] = id
  end
end
return with_decided({ deleted, running, held })
