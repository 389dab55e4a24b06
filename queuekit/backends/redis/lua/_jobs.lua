-- queuekit: what happens to one job: its attempt history, repairs (cancel, replay, run now,
-- delete) and expiry (follows _dependencies.lua in every script's prelude).

-- Attempt history (queuekit/backends/history.py): the job's field 'history', a JSON array of
-- its latest HISTORY_LIMIT ended attempts (the prelude defines the bounds), oldest first. Times
-- are stamps (text: cjson would keep only 14 digits of a number).

-- The first HISTORY_ERROR_CHARS characters of UTF-8 text (cut between characters).
local function clip(text)
  if #text <= HISTORY_ERROR_CHARS then
    return text
  end
  local at, chars = 1, 0
  while at <= #text and chars < HISTORY_ERROR_CHARS do
    local b = string.byte(text, at)
    at = at + (b < 0x80 and 1 or b < 0xE0 and 2 or b < 0xF0 and 3 or 4)
    chars = chars + 1
  end
  return string.sub(text, 1, at - 1)
end

-- The running attempt of the job (fields `f`, see load) ends now as `outcome`, with `error`
-- (false for none): its record goes on the history.
local function end_attempt(key, f, outcome, error, now)
  local v = rcall('HMGET', key, 'history', 'worker_id', 'started_at')
  local history = v[1] and cjson.decode(v[1]) or {}
  history[#history + 1] = {
    attempt = tonumber(f.attempts), worker = v[2], started = v[3], finished = stamp(now),
    outcome = outcome, error = error and clip(error) or nil,
  }
  while #history > HISTORY_LIMIT do
    table.remove(history, 1)
  end
  rcall('HSET', key, 'history', cjson.encode(history))
end

-- A running attempt failed with `error`: the job is claimable again at `due_us`, or dead
-- when `due_us` is false (decided by the caller). Returns the new status.
local function fail_attempt(key, done_key, id, f, error, due_us, now)
  rcall('HSET', key, 'last_error', error)
  end_attempt(key, f, due_us and 'failed' or 'dead', error, now)
  if not due_us then
    finish(key, done_key, id, f, 'dead', now)
    return 'dead'
  end
  requeue(key, id, f, 'failed', due_us, now)
  return 'failed'
end

-- Repairs of one job, for the scripts of one job and of a batch. The job's fields are `f`
-- (load); each returns whether the job changed.

-- Cancel a waiting, pending, failed or running job (a running one loses its lease at once). A running
-- job's id is published on the queue's sharded channel 'cancels' (a key of its slot, so this
-- is Cluster-safe), which wakes the worker holding it (cancels.py).
local function cancel_job(key, done_key, id, f, now)
  if f.status ~= 'waiting' and f.status ~= 'pending' and f.status ~= 'failed'
    and f.status ~= 'running' then
    return false
  end
  local was_running = f.status == 'running'
  if was_running then
    end_attempt(key, f, 'cancelled', false, now)
  end
  finish(key, done_key, id, f, 'cancelled', now)
  if was_running then
    rcall('SPUBLISH', K.cancels, id)
  end
  return true
end

-- Reset a dead or cancelled job to pending with attempts and worker cleared, unless another
-- job now holds its unique or debounce key; the jobs waiting for it wait for it again
-- (reopen_dependents).
local function replay_job(key, id, f, now)
  if f.status ~= 'dead' and f.status ~= 'cancelled' or not take_keys(key, id, f, now) then
    return false
  end
  rcall('HSET', key, 'status', 'pending', 'attempts', '0', 'scheduled_at', stamp(now))
  rcall('HDEL', key, 'started_at', 'finished_at', 'worker_id', 'result', 'expires_at',
    'cancelled_by')
  rcall('ZREM', K['finished:' .. f.status], id)
  move(id, f.seq, f.status, 'pending')
  make_claimable(member(f.priority, f.seq, id), now, now, f.limit_key)
  if f.limit_key then
    rcall('ZADD', K['kopen:'] .. f.limit_key, f.seq, id)
  end
  reopen_dependents(prefix_of(key, id), id, now)
  return true
end

-- Make a pending job scheduled later, or a failed one waiting for its retry, due now (its
-- attempts kept): from the scheduled set to ready, and in its key's line at its new score.
-- False for any other job (running, finished, or due already).
local function run_job_now(key, id, f, now)
  if f.status ~= 'pending' and f.status ~= 'failed' then
    return false
  end
  local m = member(f.priority, f.seq, id)
  local due = rcall('ZSCORE', K.scheduled, m)
  if not due or tonumber(due) <= now then
    return false
  end
  rcall('ZREM', K.scheduled, m)
  rcall('HSET', key, 'scheduled_at', stamp(now))
  make_claimable(m, now, now, f.limit_key)
  return true
end

-- Delete a job that is not running, from its hash and every set of its queue (the caller
-- drops it from the id index, in the index's shards), deciding the jobs waiting for it if it
-- had not finished. Its parents forget it; its dependents' edges keep naming it, as the
-- parents they were given. False for a running or missing job.
local function delete_job(key, done_key, id, f)
  if not f.status or f.status == 'running' then
    return false
  end
  local qp = prefix_of(key, id)
  if not TERMINAL[f.status] then
    decide_dependents(qp, id, 'deleted', now_us())
  end
  for _, edge in ipairs(rcall('LRANGE', qp .. 'parents:' .. id, '0', '-1')) do
    local parent, on_failure, pqp = edge_end(qp, edge)
    rcall('LREM', pqp .. 'dependents:' .. parent, '1', edge_to(id, on_failure, qp, pqp))
  end
  rcall('DEL', qp .. 'parents:' .. id)
  rcall('DEL', qp .. 'dependents:' .. id)
  out_of_line(member(f.priority, f.seq, id), f.limit_key)
  if f.limit_key then
    close_job(f.limit_key, id)
  end
  rcall('ZREM', K['status:' .. f.status], id)
  rcall('ZREM', K.all, id)
  if K['finished:' .. f.status] then
    rcall('ZREM', K['finished:' .. f.status], id)
  end
  local v = rcall('HMGET', key, 'type', 'workflow_id', 'batch_id', 'debounce_key')
  rcall('ZREM', K['type:'] .. v[1], id)
  if v[2] then
    rcall('ZREM', K['workflow:'] .. v[2], id)
  end
  if v[3] then
    rcall('ZREM', K['batch:'] .. v[3], id)
  end
  release_unique(key, id, f.unique_key, false)
  if v[4] and rcall('HGET', K.debounce, v[4]) == id then
    rcall('HDEL', K.debounce, v[4])
  end
  rcall('DEL', key)
  notify(id, done_key)
  return true
end

-- Apply one of the repairs above, by name ('replay', 'cancel', 'run_now' or 'delete'): the
-- one choice the scripts of one job and of a batch share.
local function repair_job(action, key, done_key, id, f, now)
  if action == 'replay' then
    return replay_job(key, id, f, now)
  elseif action == 'cancel' then
    return cancel_job(key, done_key, id, f, now)
  elseif action == 'run_now' then
    return run_job_now(key, id, f, now)
  end
  return delete_job(key, done_key, id, f)
end

-- Expiry. 'expiring' holds the ids of the queue's jobs enqueued with an expiry, scored by it
-- (µs). A claim drops its jobs from it; an entry whose job ended or went otherwise is dropped
-- when it comes due. Every claim script expires the queue's due entries first (a lookup of
-- an empty or missing set while no job has an expiry), so no claim meets an expired job.

-- The keys expire_due uses (the claim scripts bind them too).
local EXPIRY_KEYS = { 'expiring', 'expired', 'decided', 'job:', 'done:', 'ready', 'scheduled',
  'status:pending', 'status:cancelled', 'finished:cancelled', 'unique', 'watchers', 'limits',
  'lheld', 'kline:', 'kwait', 'kpark', 'kopen:', 'kidle', 'reach:' }

-- Cancel the jobs that never started and whose expiry passed by `now`, as cancel_job does,
-- with the error 'expired' (`batch` entries at most). Returns how many, and whether entries
-- due are left (the caller then claims nothing: one of them could be next in line).
local function expire_due(now, batch)
  local due = rcall('ZRANGEBYSCORE', K.expiring, '-inf', int(now), 'LIMIT', '0', int(batch))
  local expired = 0
  for _, id in ipairs(due) do
    rcall('ZREM', K.expiring, id)
    local key = K['job:'] .. id
    local f = load(key)
    local v = rcall('HMGET', key, 'started_at', 'expires_at')
    -- A replayed job has no expiry left (and a started one is past expiring).
    if f.status == 'pending' and not v[1] and v[2] then
      rcall('HSET', key, 'last_error', 'expired')
      finish(key, K['done:'] .. id, id, f, 'cancelled', now)
      expired = expired + 1
    end
  end
  if expired > 0 then
    -- Counted for the sweep (expire.lua), which reports them all: a claim's reply does not.
    rcall('INCRBY', K.expired, expired)
  end
  -- So are the decisions the expired jobs made for their dependents (cjson: a list of texts).
  for _, d in ipairs(DECIDED) do
    rcall('RPUSH', K.decided, cjson.encode(d))
  end
  DECIDED = {}
  return expired, #due == batch
end
local CLAIM_EXPIRE_BATCH = 100 -- expired jobs a claim script cancels per queue, at most
