-- Start waiting for a job's outcome: report it if the job is already finished (or gone),
-- else count one more waiter, whom the script that finishes the job will wake.
-- KEYS: the bound queue keys, job key.  ARGV: id.
-- Returns {'gone'}, {'done', {field, value, ...}} or {'wait'}.
bind_keys('watchers')
local key = KEYS[NQ + 1]
local status = rcall('HGET', key, 'status')
if not status then
  return { 'gone' }
end
if status == 'completed' or status == 'dead' or status == 'cancelled' then
  return { 'done', rcall('HGETALL', key) }
end
rcall('HINCRBY', K.watchers, ARGV[1], '1')
return { 'wait' }
