-- queuekit: definitions shared by the scripts of one queue (prepended to every script).
--
-- Each script names the queue keys it uses with bind_keys(...): KEYS starts with those, in
-- that order, all under the queue's hash tag {<prefix>:<queue>}; the keys of the jobs it
-- works on follow them (KEYS[NQ + i]). (reserve_enqueue binds several queues' keys in turn.)
-- Members of the ready and scheduled sets are "<priority:4><seq:16><id>", so a job's place in
-- line is readable without its hash; every other set holds plain ids.
local K = {}
local NQ = 0
local BAND = 4398046511104 -- 2^42 ms (until year 2109): one priority band of the ready score
local WAKE_TOKENS = 16
local DONE_TTL_MS = 60000
local PROMOTE_BATCH = 1000 -- due scheduled jobs promoted per call

-- Bind `names` to KEYS[at + 1], ...; NQ becomes the index of the last one.
local function bind_keys_at(at, names)
  K = {}
  for i, name in ipairs(names) do
    K[name] = KEYS[at + i]
  end
  NQ = at + #names
end

-- Names, or lists of them (such as FLOW_KEYS), bound from KEYS[1] on, in order.
local function bind_keys(...)
  local names = {}
  for _, name in ipairs({ ... }) do
    if type(name) == 'table' then
      for _, listed in ipairs(name) do
        names[#names + 1] = listed
      end
    else
      names[#names + 1] = name
    end
  end
  bind_keys_at(0, names)
end

-- The flow-control keys of the scripts that end, cancel or delete jobs (finish, batch,
-- rescue, cancel, delete): each may free a key's slot, move its line and park or drop it.
local FLOW_KEYS = { 'limits', 'lheld', 'kline:', 'kwait', 'kpark', 'kopen:', 'krun', 'lk:served',
  'kidle' }

-- Numbers go to Redis as exact decimal text: Lua's tostring keeps only 14 digits.
local function int(x)
  return string.format('%d', x)
end

-- The server's clock, in microseconds since the epoch (exact below 2^53).
local function now_us()
  local t = rcall('TIME')
  return tonumber(t[1]) * 1000000 + tonumber(t[2])
end

-- Epoch microseconds as "seconds.micros", the stored form of every timestamp.
local function stamp(us)
  if us < 0 then
    return '-' .. stamp(-us)
  end
  local s = math.floor(us / 1000000)
  return string.format('%d.%06d', s, us - s * 1000000)
end

local function member(priority, seq, id)
  return string.format('%04d%016d', tonumber(priority), tonumber(seq)) .. id
end

local function member_priority(m)
  return tonumber(string.sub(m, 1, 4))
end

-- Ready order: priority descending, then due time (ms); ties go by member, i.e. by seq.
local function ready_score(priority, due_us)
  local ms = math.floor(due_us / 1000)
  if ms < 0 then
    ms = 0
  elseif ms >= BAND then
    ms = BAND - 1
  end
  return int((1000 - priority) * BAND + ms)
end

-- The fields every state change needs; status is false when the job does not exist.
local function load(key)
  local v = rcall('HMGET', key, 'status', 'seq', 'priority', 'unique_key', 'attempts',
    'max_attempts', 'lease_token', 'limit_key')
  return {
    status = v[1], seq = v[2], priority = v[3], unique_key = v[4],
    attempts = v[5], max_attempts = v[6], lease_token = v[7], limit_key = v[8],
  }
end

-- Whether the claim whose lease token is `token` still holds the job (the fence).
local function holds(f, token)
  return f.status == 'running' and f.lease_token == token
end

-- Flow control (queuekit/backends/flow.py holds the rule; claim_limited.lua applies it).
-- Kept for every job with a limit_key, whatever the queue's limits (so setting limits needs
-- no rebuild of them), and cheap enough for the jobs that carry one:
--   'kline:<key>'  the key's claimable (pending/failed) members, ready or scheduled, scored
--                  as in `ready` (ready_score), so its due ones are read band by band;
--   'kopen:<key>'  the key's unfinished (pending/failed/running) ids by seq: its head;
--   'krun'         running jobs per key (a zset: the busiest are its top);
--   'kwait'        the keys with a line, scored by when they were last served, but for
--   'kpark'        those parked there by claim_limited while their own running jobs block
--                  them (per_key reached, or ordered): back in kwait when one stops running
--                  (or the limits change), so blocked keys cost later claims nothing;
--   'kidle'        keys left with no unfinished job (or held), by when: claim_limited drops
--                  their states once idle for a rate period, so states do not pile up.
-- Keyless jobs have a line too ('kline:' with the empty key, '' in kwait), but only while the
-- queue is limited (its 'limits', or a hold's 'lheld'), so queues without limits pay nothing
-- for it; the script that makes a queue limited empties it and build_lines refills it.
-- Key states (see flow.KeyState), one hash per field, the field being the key ('' = the
-- queue): 'lk:window', 'lk:started', 'lk:held', 'lk:served', all in epoch microseconds.
local LIMITED = {}

-- Whether the bound queue is claimed under limits (cached per queue for the script's run).
local function limited()
  local name = K.limits
  if not name then
    return false
  end
  local known = LIMITED[name]
  if known == nil then
    known = rcall('EXISTS', name) == 1 or rcall('EXISTS', K.lheld) == 1
    LIMITED[name] = known
  end
  return known
end

-- The line a job of limit key `lk` (false for none) belongs in, or nil when it has none.
local function line_of(lk)
  if lk and lk ~= '' then
    return lk
  end
  if limited() then
    return ''
  end
  return nil
end

local function line_add(lk, m, score)
  local line = line_of(lk)
  if line == nil then
    return
  end
  rcall('ZADD', K['kline:'] .. line, score, m)
  if not rcall('ZSCORE', K.kwait, line) and (line == '' or not rcall('ZSCORE', K.kpark, line)) then
    rcall('ZADD', K.kwait, rcall('HGET', K['lk:served'], line) or '0', line)
  end
end

-- A job of key `lk` finished or was deleted: is the key left with none unfinished?
local function close_job(lk, id)
  local key = K['kopen:'] .. lk
  if rcall('ZREM', key, id) == 1 and rcall('EXISTS', key) == 0 then
    rcall('ZADD', K.kidle, int(now_us()), lk)
  end
end

local function line_remove(lk, m)
  local line = line_of(lk)
  if line == nil then
    return
  end
  local key = K['kline:'] .. line
  if rcall('ZREM', key, m) == 1 and rcall('EXISTS', key) == 0 then
    rcall('ZREM', K.kwait, line)
    if line ~= '' then
      rcall('ZREM', K.kpark, line)
    end
  end
end

-- Put a parked key back in turn (its line is not empty: parked keys with none are dropped).
local function unpark(lk)
  if rcall('ZREM', K.kpark, lk) == 1 then
    rcall('ZADD', K.kwait, rcall('HGET', K['lk:served'], lk) or '0', lk)
  end
end

-- Running jobs of a limited queue that stopped in this script: the slots it freed, so the
-- script pushes as many wake-ups (signal(FREED)) for the workers waiting on the queue.
local FREED = 0

local function left_running(lk)
  if lk then
    if tonumber(rcall('ZINCRBY', K.krun, '-1', lk)) <= 0 then
      rcall('ZREM', K.krun, lk)
    end
    unpark(lk)
  end
  if limited() then
    FREED = FREED + 1
  end
end

-- A pending or failed job goes where claims find it: ready once due, else scheduled; and in
-- its key's line.
local function make_claimable(m, due_us, now, lk)
  local score = ready_score(member_priority(m), due_us)
  if due_us <= now then
    rcall('ZADD', K.ready, score, m)
  else
    rcall('ZADD', K.scheduled, int(due_us), m)
  end
  line_add(lk, m, score)
end

local function out_of_line(m, lk)
  rcall('ZREM', K.ready, m)
  rcall('ZREM', K.scheduled, m)
  line_remove(lk, m)
end

local function move(id, seq, from, to)
  rcall('ZREM', K['status:' .. from], id)
  rcall('ZADD', K['status:' .. to], seq, id)
end

-- Promote due scheduled jobs to ready (PROMOTE_BATCH at most); true when some are left.
local function promote_due(now)
  local batch = PROMOTE_BATCH
  local due = rcall('ZRANGEBYSCORE', K.scheduled, '-inf', int(now), 'WITHSCORES', 'LIMIT', '0', int(batch))
  for i = 1, #due, 2 do
    local m = due[i]
    rcall('ZADD', K.ready, ready_score(member_priority(m), tonumber(due[i + 1])), m)
    rcall('ZREM', K.scheduled, m)
  end
  return #due == 2 * batch
end

-- The ready member m (job hash `key`) is running: attempts + 1, leased until `expiry` (µs,
-- stamped as `expires_at`), worker and lease token set. Returns the job's fields.
local function claim_member(key, m, started_at, expiry, expires_at, worker_id, lease_token)
  local id = string.sub(m, 21)
  local v = rcall('HMGET', key, 'status', 'seq', 'limit_key')
  rcall('ZREM', K.ready, m)
  rcall('ZREM', K.expiring, id)
  line_remove(v[3], m)
  if v[3] then
    rcall('ZINCRBY', K.krun, '1', v[3])
  end
  move(id, v[2], v[1], 'running')
  rcall('ZADD', K.leases, int(expiry), id)
  rcall('HINCRBY', key, 'attempts', '1')
  rcall('HSET', key, 'status', 'running', 'started_at', started_at,
    'lease_expires_at', expires_at, 'worker_id', worker_id, 'lease_token', lease_token)
  return rcall('HGETALL', key)
end

-- Wake up to n idle workers blocked on the signal list (BLPOP); the list stays short.
local function signal(n)
  if n <= 0 then
    return
  end
  if n > WAKE_TOKENS then
    n = WAKE_TOKENS
  end
  for _ = 1, n do
    rcall('LPUSH', K.signal, '1')
  end
  rcall('LTRIM', K.signal, '0', int(WAKE_TOKENS - 1))
end

-- After a claim: leave the queue as many wake-up tokens as it has ready jobs (at most
-- WAKE_TOKENS). None left over for the jobs just claimed, which would wake idle workers for
-- nothing (each such wake-up costs a claim over all of a worker's queues); and more when the
-- workers an enqueue woke (WAKE_TOKENS at most) leave ready jobs behind, so that every idle
-- worker is woken while there is work, however many wait.
local function settle_signal()
  local want = math.min(rcall('ZCARD', K.ready), WAKE_TOKENS)
  local have = rcall('LLEN', K.signal)
  if want == 0 then
    rcall('DEL', K.signal)
  elseif have > want then
    rcall('LTRIM', K.signal, '0', int(want - 1))
  else
    for _ = have + 1, want do
      rcall('LPUSH', K.signal, '1')
    end
  end
end

-- Wake whoever waits for this job's outcome (wait_for_outcome), one token per waiter.
local function notify(id, done_key)
  local waiting = tonumber(rcall('HGET', K.watchers, id) or '0')
  if waiting > 0 then
    for _ = 1, math.min(waiting, 1000) do
      rcall('RPUSH', done_key, '1')
    end
    rcall('PEXPIRE', done_key, int(DONE_TTL_MS))
  end
  if waiting ~= 0 then
    rcall('HDEL', K.watchers, id)
  end
end

local function release_unique(id, unique_key)
  if unique_key and rcall('HGET', K.unique, unique_key) == id then
    rcall('HDEL', K.unique, unique_key)
  end
end

-- A pending, failed or running job ends: completed, dead or cancelled (the worker stays).
local function finish(key, done_key, id, f, status, now)
  rcall('HSET', key, 'status', status, 'finished_at', stamp(now))
  if f.status == 'running' then
    rcall('HDEL', key, 'lease_expires_at')
    rcall('ZREM', K.leases, id)
    left_running(f.limit_key)
  else
    out_of_line(member(f.priority, f.seq, id), f.limit_key)
  end
  if f.limit_key then
    close_job(f.limit_key, id)
  end
  move(id, f.seq, f.status, status)
  rcall('ZADD', K['finished:' .. status], int(now), id)
  release_unique(id, f.unique_key)
  notify(id, done_key)
end

-- A running job goes back in line as `status` (failed or pending), claimable at `due_us`.
local function requeue(key, id, f, status, due_us, now)
  rcall('HSET', key, 'status', status, 'scheduled_at', stamp(due_us))
  rcall('HDEL', key, 'lease_expires_at')
  rcall('ZREM', K.leases, id)
  left_running(f.limit_key)
  move(id, f.seq, 'running', status)
  make_claimable(member(f.priority, f.seq, id), due_us, now, f.limit_key)
end

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

-- Cancel a pending, failed or running job (a running one loses its lease at once). A running
-- job's id is published on the queue's sharded channel 'cancels' (a key of its slot, so this
-- is Cluster-safe), which wakes the worker holding it (cancels.py).
local function cancel_job(key, done_key, id, f, now)
  if f.status ~= 'pending' and f.status ~= 'failed' and f.status ~= 'running' then
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

-- Reset a dead or cancelled job to pending with attempts and worker cleared, unless a live job
-- now holds its unique key.
local function replay_job(key, id, f, now)
  if f.status ~= 'dead' and f.status ~= 'cancelled' then
    return false
  end
  if f.unique_key and rcall('HGET', K.unique, f.unique_key) then
    return false
  end
  rcall('HSET', key, 'status', 'pending', 'attempts', '0', 'scheduled_at', stamp(now))
  rcall('HDEL', key, 'started_at', 'finished_at', 'worker_id', 'result', 'expires_at')
  rcall('ZREM', K['finished:' .. f.status], id)
  move(id, f.seq, f.status, 'pending')
  make_claimable(member(f.priority, f.seq, id), now, now, f.limit_key)
  if f.limit_key then
    rcall('ZADD', K['kopen:'] .. f.limit_key, f.seq, id)
  end
  if f.unique_key then
    rcall('HSET', K.unique, f.unique_key, id)
  end
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
-- drops it from the id index, in the index's shards). False for a running or missing job.
local function delete_job(key, done_key, id, f)
  if not f.status or f.status == 'running' then
    return false
  end
  out_of_line(member(f.priority, f.seq, id), f.limit_key)
  if f.limit_key then
    close_job(f.limit_key, id)
  end
  rcall('ZREM', K['status:' .. f.status], id)
  rcall('ZREM', K.all, id)
  if K['finished:' .. f.status] then
    rcall('ZREM', K['finished:' .. f.status], id)
  end
  rcall('ZREM', K['type:'] .. rcall('HGET', key, 'type'), id)
  release_unique(id, f.unique_key)
  rcall('DEL', key)
  notify(id, done_key)
  return true
end

-- Expiry. 'expiring' holds the ids of the queue's jobs enqueued with an expiry, scored by it
-- (µs). A claim drops its jobs from it; an entry whose job ended or went otherwise is dropped
-- when it comes due. Every claim script expires the queue's due entries first (a lookup of
-- an empty or missing set while no job has an expiry), so no claim meets an expired job.

-- The keys expire_due uses (the claim scripts bind them too).
local EXPIRY_KEYS = { 'expiring', 'job:', 'done:', 'ready', 'scheduled', 'status:pending',
  'status:cancelled', 'finished:cancelled', 'unique', 'watchers', 'limits', 'lheld', 'kline:',
  'kwait', 'kpark', 'kopen:', 'kidle' }

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
  return expired, #due == batch
end
local CLAIM_EXPIRE_BATCH = 100 -- expired jobs a claim script cancels per queue, at most

-- The id -> queue index, split in shards {<prefix>#<n>}:index (keys.py picks an id's shard).

-- Point `id` at `queue` in its index shard unless another owner than `expected` holds it
-- (`expected`: '' for none, a queue whose job turned out not to exist, or `queue` itself).
-- Returns '' when reserved, else the owner.
local function reserve_id(shard_key, id, queue, expected)
  local owner = rcall('HGET', shard_key, id)
  if owner and owner ~= expected then
    return owner
  end
  rcall('HSET', shard_key, id, queue)
  return ''
end

-- Storing new jobs of one queue (a group), in two steps so that a script can check every
-- group before it writes any (all or none). A group's keys are ENQUEUE_KEYS bound (NQ
-- follows them), then one job key per job; its ARGV, from ARGV[b + 1]: queue, count, then
-- per job ENQUEUE_FIELDS values: id, offset (its place in the enqueue call), type, payload,
-- priority, max_attempts, delay_us, run_at_us ('' = use delay), unique_key ('' = none), taken
-- ('1' = the id belongs to a job of another queue), headers (JSON text, '' = none),
-- limit_key ('' = none), expires_at_us ('' = none), expires_in_us ('' = none).
local ENQUEUE_KEYS = { 'ready', 'scheduled', 'all', 'status:pending', 'unique', 'signal', 'type:',
  'limits', 'lheld', 'kline:', 'kwait', 'kpark', 'kopen:', 'lk:served', 'seq', 'expiring' }
local ENQUEUE_FIELDS = 14

-- Where the values of a group's i-th job start: ARGV[j + 1] is its id.
local function job_args(b, i)
  return b + 2 + (i - 1) * ENQUEUE_FIELDS
end

-- Returns per job true (to store) or '=<id of the live job holding its unique key>'; or
-- false and the id when a job with that id exists already.
local function check_group(b)
  local n = tonumber(ARGV[b + 2])
  local holders = {}
  local outcome = {}
  for i = 1, n do
    local j = job_args(b, i)
    local id, unique_key, taken = ARGV[j + 1], ARGV[j + 9], ARGV[j + 10]
    local holder = false
    if unique_key ~= '' then
      holder = holders[unique_key] or rcall('HGET', K.unique, unique_key)
    end
    if holder then
      outcome[i] = '=' .. holder
    elseif taken == '1' or rcall('EXISTS', KEYS[NQ + i]) == 1 then
      return false, id
    else
      outcome[i] = true
      if unique_key ~= '' then
        holders[unique_key] = id
      end
    end
  end
  return outcome
end

-- Store the jobs check_group said to store, created at `now`; appends per job
-- '+<scheduled_at>' or its outcome to `out`, and wakes workers.
-- A job's seq (its place in enqueue order) is the queue's last seq + 1, or `base` (a reading
-- of the server's clock, in µs) plus the job's offset in the call if that is more: strict
-- enqueue order within the queue; across queues the clock's order, and the call's order
-- within one call (on a Cluster every queue's part takes the same base, the reservation's).
-- 16 digits of µs last until the year 2286; seqs of the counter earlier versions kept
-- ({<prefix>}:seq) are smaller, so their jobs come first.
local function store_group(b, outcome, now, base, out)
  local queue = ARGV[b + 1]
  local created_at = stamp(now)
  local created = 0
  local last = tonumber(rcall('GET', K.seq) or '0')
  for i, result in ipairs(outcome) do
    if result == true then
      local j = job_args(b, i)
      last = math.max(last + 1, base + tonumber(ARGV[j + 2]))
      local id, seq, priority = ARGV[j + 1], int(last), ARGV[j + 5]
      local due = ARGV[j + 8] ~= '' and tonumber(ARGV[j + 8]) or now + tonumber(ARGV[j + 7])
      local scheduled_at = stamp(due)
      local key = KEYS[NQ + i]
      rcall('HSET', key,
        'id', id, 'queue', queue, 'type', ARGV[j + 3], 'payload', ARGV[j + 4],
        'priority', priority, 'status', 'pending', 'attempts', '0',
        'max_attempts', ARGV[j + 6], 'created_at', created_at, 'scheduled_at', scheduled_at,
        'seq', seq)
      local unique_key = ARGV[j + 9]
      if unique_key ~= '' then
        rcall('HSET', key, 'unique_key', unique_key)
        rcall('HSET', K.unique, unique_key, id)
      end
      if ARGV[j + 11] ~= '' then
        rcall('HSET', key, 'headers', ARGV[j + 11])
      end
      local limit_key = ARGV[j + 12] ~= '' and ARGV[j + 12]
      if limit_key then
        rcall('HSET', key, 'limit_key', limit_key)
        rcall('ZADD', K['kopen:'] .. limit_key, seq, id)
      end
      local expiry = ARGV[j + 13] ~= '' and tonumber(ARGV[j + 13])
        or ARGV[j + 14] ~= '' and now + tonumber(ARGV[j + 14])
      if expiry then
        rcall('HSET', key, 'expires_at', stamp(expiry))
        rcall('ZADD', K.expiring, int(expiry), id)
      end
      rcall('ZADD', K.all, seq, id)
      rcall('ZADD', K['status:pending'], seq, id)
      rcall('ZADD', K['type:'] .. ARGV[j + 3], seq, id)
      make_claimable(member(priority, seq, id), due, now, limit_key)
      created = created + 1
      out[#out + 1] = '+' .. scheduled_at
    else
      out[#out + 1] = result
    end
  end
  if created > 0 then
    rcall('SET', K.seq, int(last))
    signal(created)
  end
end

-- The keys peek_claim binds for each queue; 'job:' is the prefix of the queue's job keys.
local CLAIM_KEYS = { 'ready', 'scheduled', 'leases', 'status:pending', 'status:failed',
  'status:running', 'paused', 'job:', 'limits', 'lheld', 'kline:', 'kwait', 'kpark', 'krun',
  'signal', 'expiring', 'done:', 'status:cancelled', 'finished:cancelled', 'unique', 'watchers',
  'kopen:', 'kidle' }

-- Limited queues (see 'Flow control' above).

local BUILD_BATCH = 500 -- jobs looked at per step of build_lines

-- One step of refilling the keyless line of a queue that became limited: look at the next
-- BUILD_BATCH jobs by seq (the cursor is 'lbuild'); true once done (the cursor is gone).
local function build_lines()
  local after = rcall('GET', K.lbuild)
  if not after then
    return true
  end
  local seen = rcall('ZRANGEBYSCORE', K.all, '(' .. after, '+inf', 'WITHSCORES', 'LIMIT', '0',
    int(BUILD_BATCH))
  for i = 1, #seen, 2 do
    local id = seen[i]
    local v = rcall('HMGET', K['job:'] .. id, 'status', 'priority', 'seq', 'limit_key')
    if (v[1] == 'pending' or v[1] == 'failed') and not v[4] then
      local m = member(v[2], v[3], id)
      local score = rcall('ZSCORE', K.ready, m)
      if not score then
        local due = rcall('ZSCORE', K.scheduled, m)
        score = due and ready_score(member_priority(m), tonumber(due))
      end
      if score then
        line_add(false, m, score)
      end
    end
  end
  if #seen < 2 * BUILD_BATCH then
    rcall('DEL', K.lbuild)
    return true
  end
  rcall('SET', K.lbuild, seen[#seen])
  return false
end

-- Empty the keyless line and start refilling it (build_lines), when the queue becomes limited:
-- while it was not, no script kept that line.
local function start_limiting()
  rcall('DEL', K['kline:'])
  rcall('ZREM', K.kwait, '')
  rcall('SET', K.lbuild, '0')
end

-- The stored state of a key ('' = the queue), as flow.KeyState (times in microseconds).
local function key_state(key)
  return {
    window = tonumber(rcall('HGET', K['lk:window'], key) or '0'),
    started = tonumber(rcall('HGET', K['lk:started'], key) or '0'),
    held = tonumber(rcall('HGET', K['lk:held'], key) or '0'),
    served = tonumber(rcall('HGET', K['lk:served'], key) or '0'),
  }
end

-- flow.current: the state with its start count reset if it belongs to an earlier window.
local function current(state, window)
  if state.window ~= window then
    state.window, state.started = window, 0
  end
  return state
end

-- A queue's limits from their stored JSON (null fields as nil); none for a hold only.
local function read_limits()
  local raw = rcall('GET', K.limits)
  local limits = raw and cjson.decode(raw) or {}
  for _, name in ipairs({ 'concurrency', 'per_key', 'rate', 'key_rate', 'period', 'ordered' }) do
    if limits[name] == cjson.null then
      limits[name] = nil
    end
  end
  limits.period_us = math.floor((limits.period or 60) * 1000000 + 0.5)
  return limits, raw
end
