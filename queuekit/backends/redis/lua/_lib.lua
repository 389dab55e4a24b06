-- queuekit: definitions shared by the scripts of one queue (prepended to every script).
--
-- Each script names the queue keys it uses with bind_keys(...): KEYS starts with those, in
-- that order, all under the queue's hash tag {<prefix>:<queue>}; the keys of the jobs it
-- works on follow them (KEYS[NQ + i]). (reserve_enqueue binds several queues' keys in turn.) Members of the ready and scheduled sets are
-- "<priority:4><seq:16><id>", so a job's place in line is readable without its hash; every
-- other set holds plain ids.
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

local function bind_keys(...)
  bind_keys_at(0, { ... })
end

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
    'max_attempts', 'lease_token')
  return {
    status = v[1], seq = v[2], priority = v[3], unique_key = v[4],
    attempts = v[5], max_attempts = v[6], lease_token = v[7],
  }
end

-- Whether the claim whose lease token is `token` still holds the job (the fence).
local function holds(f, token)
  return f.status == 'running' and f.lease_token == token
end

-- A pending or failed job goes where claims find it: ready once due, else scheduled.
local function make_claimable(m, due_us, now)
  if due_us <= now then
    rcall('ZADD', K.ready, ready_score(member_priority(m), due_us), m)
  else
    rcall('ZADD', K.scheduled, int(due_us), m)
  end
end

local function out_of_line(m)
  rcall('ZREM', K.ready, m)
  rcall('ZREM', K.scheduled, m)
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
  local v = rcall('HMGET', key, 'status', 'seq')
  rcall('ZREM', K.ready, m)
  move(id, v[2], v[1], 'running')
  rcall('ZADD', K.leases, int(expiry), id)
  rcall('HINCRBY', key, 'attempts', '1')
  rcall('HSET', key, 'status', 'running', 'started_at', started_at,
    'lease_expires_at', expires_at, 'worker_id', worker_id, 'lease_token', lease_token)
  return rcall('HGETALL', key)
end

-- Wake up to n idle workers blocked on the signal list (BLPOP); the list stays short.
local function signal(n)
  if n > WAKE_TOKENS then
    n = WAKE_TOKENS
  end
  for _ = 1, n do
    rcall('LPUSH', K.signal, '1')
  end
  rcall('LTRIM', K.signal, '0', int(WAKE_TOKENS - 1))
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
  else
    out_of_line(member(f.priority, f.seq, id))
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
  move(id, f.seq, 'running', status)
  make_claimable(member(f.priority, f.seq, id), due_us, now)
end

-- A running attempt failed with `error`: the job is claimable again at `due_us`, or dead
-- when `due_us` is false (decided by the caller). Returns the new status.
local function fail_attempt(key, done_key, id, f, error, due_us, now)
  rcall('HSET', key, 'last_error', error)
  if not due_us then
    finish(key, done_key, id, f, 'dead', now)
    return 'dead'
  end
  requeue(key, id, f, 'failed', due_us, now)
  return 'failed'
end

-- Repairs of one job, for the scripts of one job and of a batch. The job's fields are `f`
-- (load); each returns whether the job changed.

-- Cancel a pending, failed or running job (a running one loses its lease at once).
local function cancel_job(key, done_key, id, f, now)
  if f.status ~= 'pending' and f.status ~= 'failed' and f.status ~= 'running' then
    return false
  end
  finish(key, done_key, id, f, 'cancelled', now)
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
  rcall('HDEL', key, 'started_at', 'finished_at', 'worker_id', 'result')
  rcall('ZREM', K['finished:' .. f.status], id)
  move(id, f.seq, f.status, 'pending')
  make_claimable(member(f.priority, f.seq, id), now, now)
  if f.unique_key then
    rcall('HSET', K.unique, f.unique_key, id)
  end
  return true
end

-- Delete a job that is not running, from its hash and every set of its queue (the caller
-- drops it from the id index, in the {<prefix>} slot). False for a running or missing job.
local function delete_job(key, done_key, id, f)
  if not f.status or f.status == 'running' then
    return false
  end
  out_of_line(member(f.priority, f.seq, id))
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

-- The {<prefix>} slot: the id -> queue index, the queue names, the seq counter.

-- Take `count` seqs from the counter; returns the first.
local function take_seqs(seq_key, count)
  return rcall('INCRBY', seq_key, int(count)) - count + 1
end

-- Point `id` at `queue` in the index unless another owner than `expected` holds it
-- (`expected`: '' for none, a queue whose job turned out not to exist, or `queue` itself).
-- Returns '' when reserved, else the owner.
local function reserve_id(index_key, id, queue, expected)
  local owner = rcall('HGET', index_key, id)
  if owner and owner ~= expected then
    return owner
  end
  rcall('HSET', index_key, id, queue)
  return ''
end

-- Storing new jobs of one queue (a group), in two steps so that a script can check every
-- group before it writes any (all or none). A group's keys are ENQUEUE_KEYS bound (NQ
-- follows them), then one job key per job; its ARGV, from ARGV[b + 1]: queue, count, then
-- per job ENQUEUE_FIELDS values: id, seq (added to the seq base), type, payload, priority,
-- max_attempts, delay_us, run_at_us ('' = use delay), unique_key ('' = none), taken ('1' =
-- the id belongs to a job of another queue), headers (JSON text, '' = none).
local ENQUEUE_KEYS = { 'ready', 'scheduled', 'all', 'status:pending', 'unique', 'signal', 'type:' }
local ENQUEUE_FIELDS = 11

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
local function store_group(b, outcome, seq_base, now, out)
  local queue = ARGV[b + 1]
  local created_at = stamp(now)
  local created = 0
  for i, result in ipairs(outcome) do
    if result == true then
      local j = job_args(b, i)
      local id, seq, priority = ARGV[j + 1], int(seq_base + tonumber(ARGV[j + 2])), ARGV[j + 5]
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
      rcall('ZADD', K.all, seq, id)
      rcall('ZADD', K['status:pending'], seq, id)
      rcall('ZADD', K['type:'] .. ARGV[j + 3], seq, id)
      make_claimable(member(priority, seq, id), due, now)
      created = created + 1
      out[#out + 1] = '+' .. scheduled_at
    else
      out[#out + 1] = result
    end
  end
  if created > 0 then
    signal(created)
  end
end

-- The keys peek_claim binds for each queue; 'job:' is the prefix of the queue's job keys.
local CLAIM_KEYS = { 'ready', 'scheduled', 'leases', 'status:pending', 'status:failed',
  'status:running', 'paused', 'job:' }
