-- Finish a batch of attempts in one queue, in order: complete, fail or snooze each job whose
-- attempt still holds it (running, same lease token); any other job is left as it is.
-- KEYS: the bound queue keys, then job key and done key per operation.
-- ARGV: five per operation: kind, id, lease_token, then
--   complete: has_result ('1'/'0'), result
--   fail:     error, retry_us ('' = dead, as the worker decided)
--   snooze:   delay_us, '' (the attempt does not count)
-- Returns per operation the job's new status (completed, failed, dead or pending), or ''
-- when the attempt no longer held the job.
bind_keys(
  'ready',
  'scheduled',
  'leases',
  'status:running',
  'status:pending',
  'status:failed',
  'status:completed',
  'status:dead',
  'finished:completed',
  'finished:dead',
  'unique',
  'watchers',
  'signal',
  FLOW_KEYS,
  'reach:'
)
local now = now_us()
local out, claimable = {}, 0
for i = 1, #ARGV / 5 do
  local b = 5 * (i - 1)
  local kind, id, token = ARGV[b + 1], ARGV[b + 2], ARGV[b + 3]
  local arg1, arg2 = ARGV[b + 4], ARGV[b + 5]
  local key, done_key = KEYS[NQ + 2 * i - 1], KEYS[NQ + 2 * i]
  local f = load(key)
  local status = ''
  if holds(f, token) then
    if kind == 'complete' then
      if arg1 == '1' then
        rcall('HSET', key, 'result', arg2)
      else
        rcall('HDEL', key, 'result')
      end
      end_attempt(key, f, 'completed', false, now)
      finish(key, done_key, id, f, 'completed', now)
      status = 'completed'
    elseif kind == 'fail' then
      local due = arg2 ~= '' and now + tonumber(arg2)
      status = fail_attempt(key, done_key, id, f, arg1, due, now)
    else -- snooze
      end_attempt(key, f, 'snoozed', false, now)
      rcall('HINCRBY', key, 'attempts', '-1')
      requeue(key, id, f, 'pending', now + tonumber(arg1), now)
      status = 'pending'
    end
    if status == 'failed' or status == 'pending' then
      claimable = claimable + 1
    end
  end
  out[i] = status
end
-- One wake-up per job made claimable, as a script per job would push.
signal(claimable)
-- A limited queue's blocked jobs may start now that a slot is free.
signal(FREED)
return with_decided(out)
