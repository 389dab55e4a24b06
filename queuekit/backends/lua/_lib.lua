-- queuekit: definitions shared by the scripts of one queue (prepended to every script).
--
-- Each script names the queue keys it uses with bind_keys(...): KEYS starts with those, in
-- that order, all under the queue's hash tag {<prefix>:<queue>}; the keys of the jobs it
-- works on follow them (KEYS[NQ + i]). Members of the ready and scheduled sets are
-- "<priority:4><seq:16><id>", so a job's place in line is readable without its hash; every
-- other set holds plain ids.
local K = {}
local NQ = 0
local BAND = 4398046511104 -- 2^42 ms (until year 2109): one priority band of the ready score
local WAKE_TOKENS = 16
local DONE_TTL_MS = 60000

local function bind_keys(...)
  for i, name in ipairs({ ... }) do
    K[name] = KEYS[i]
    NQ = i
  end
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
  local v = rcall('HMGET', key, 'status', 'seq', 'priority', 'unique_key', 'attempts', 'max_attempts')
  return {
    status = v[1], seq = v[2], priority = v[3], unique_key = v[4],
    attempts = v[5], max_attempts = v[6],
  }
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

-- A pending, failed or running job ends: completed, dead or cancelled.
local function finish(key, done_key, id, f, status, now)
  rcall('HSET', key, 'status', status, 'finished_at', stamp(now))
  if f.status == 'running' then
    rcall('HDEL', key, 'lease_expires_at', 'worker_id')
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
  rcall('HDEL', key, 'lease_expires_at', 'worker_id')
  rcall('ZREM', K.leases, id)
  move(id, f.seq, 'running', status)
  make_claimable(member(f.priority, f.seq, id), due_us, now)
end

-- A running attempt failed with `error`: the job is claimable again at `due_us`, or dead
-- when no attempts are left or `due_us` is false. Returns the new status.
local function fail_attempt(key, done_key, id, f, error, due_us, now)
  rcall('HSET', key, 'last_error', error)
  if not due_us or tonumber(f.attempts) >= tonumber(f.max_attempts) then
    finish(key, done_key, id, f, 'dead', now)
    return 'dead'
  end
  requeue(key, id, f, 'failed', due_us, now)
  return 'failed'
end
