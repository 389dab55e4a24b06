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

-- A stamp ("seconds.micros") as epoch microseconds.
local function stamp_us(text)
  local sign, s, f = string.match(text, '^(-?)(%d+)%.(%d+)$')
  local us = tonumber(s) * 1000000 + tonumber(f)
  return sign == '-' and -us or us
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
--   'kidle'        keys of a limited queue left with no unfinished job (or held), by when
--                  their states may go: claim_limited drops them once no hold or rate
--                  window of theirs is open, so states do not pile up.
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

-- A job of key `lk` finished or was deleted: is the key left with none unfinished? (Only a
-- limited queue's keys have states to drop: limits_set drops them all with the limits.)
local function close_job(lk, id)
  local key = K['kopen:'] .. lk
  if rcall('ZREM', key, id) == 1 and rcall('EXISTS', key) == 0 and limited() then
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

-- Keys a job holds (the rules: Backend in queuekit/backend.py). 'unique' maps each unique key
-- to the job holding it: while live, then while finished in one of its own 'unique_states'
-- (comma-joined) until its 'unique_until' (a stamp; none: while it is stored). 'debounce'
-- maps each debounce key to the job holding it while unstarted (waiting or pending). An entry
-- may outlive its hold (a claim does not touch 'debounce'; a hold's period ends unseen):
-- key_holder reads the holder's fields and lets a lapsed one go, so every reader of either
-- hash goes through it. K: the queue's keys ('job:' among them).
local LIVE = { waiting = true, pending = true, running = true, failed = true }
local UNSTARTED = { waiting = true, pending = true }

-- Whether a comma-joined list of states names `status`.
local function listed(states, status)
  return string.find(',' .. states .. ',', ',' .. status .. ',', 1, true) ~= nil
end

-- The job holding key `k` of hash `hash` ('unique' or 'debounce') at `now` (µs), or false.
local function key_holder(hash, k, now)
  local id = rcall('HGET', K[hash], k)
  if not id then
    return false
  end
  if hash == 'debounce' then
    if UNSTARTED[rcall('HGET', K['job:'] .. id, 'status')] then
      return id
    end
  else
    local v = rcall('HMGET', K['job:'] .. id, 'status', 'unique_states', 'unique_until')
    local kept = v[2] and v[1] and listed(v[2], v[1]) and (not v[3] or stamp_us(v[3]) > now)
    if LIVE[v[1]] or kept then
      return id
    end
  end
  rcall('HDEL', K[hash], k)
  return false
end

-- Job `id` (hash `key`, unique key `unique_key`) ended as `status`, or was deleted (`status`
-- false): it lets its unique key go, unless it ended in one of its unique_states.
local function release_unique(key, id, unique_key, status)
  if not unique_key then
    return
  end
  if status then
    local states = rcall('HGET', key, 'unique_states')
    if states and listed(states, status) then
      return
    end
  end
  if rcall('HGET', K.unique, unique_key) == id then
    rcall('HDEL', K.unique, unique_key)
  end
end

-- Job `id` (hash `key`, fields `f`, see load) is about to be unfinished again (a replay, or a
-- dependent brought back): it takes its keys back, unless another job holds one of them
-- (then nothing changes, and false).
local function take_keys(key, id, f, now)
  local debounce_key = rcall('HGET', key, 'debounce_key')
  local unique = f.unique_key and key_holder('unique', f.unique_key, now)
  local debounce = debounce_key and key_holder('debounce', debounce_key, now)
  if unique and unique ~= id or debounce and debounce ~= id then
    return false
  end
  if f.unique_key then
    rcall('HSET', K.unique, f.unique_key, id)
  end
  if debounce_key then
    rcall('HSET', K.debounce, debounce_key, id)
  end
  return true
end
