-- Delete jobs that are not running: every one given (delete_job), or those in one terminal
-- status that finished long enough ago (prune).
-- KEYS: the bound queue keys, then job key and done key per id.
-- ARGV: status ('' = any but running), older_than_us ('' = any age), id...
-- Returns the ids deleted, then the ids left because they are running.
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
  'reach:'
)
local status, older = ARGV[1], ARGV[2]
local now = nil
local deleted, running = {}, {}
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
  end
  if ok and delete_job(key, done_key, id, f) then
    deleted[#deleted + 1] = id
  elseif ok and f.status == 'running' then
    running[#running + 1] = id
  end
end
return with_decided({ deleted, running })
