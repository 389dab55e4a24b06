-- Claim from one limited queue (its 'limits', or only a hold): the rule of
-- queuekit/backends/flow.py `choose`, ported here so that it runs atomically with the claim
-- (keep the two in step). Candidates come from the keys' lines ('kline:<key>'), visited
-- least recently served first ('kwait'), so a key with many jobs hides no other key's; keys
-- that their own running jobs block are parked ('kpark') and cost nothing until one stops.
-- Before choosing it takes a step of refilling the keyless line (if one is under way) and
-- drops the states of keys left idle ('kidle').
-- KEYS: the bound queue keys ('job:' is the prefix of its job keys).
-- ARGV: free (the most to claim), lease_us, worker_id, lease_token.
-- Returns {'unlimited'} when the queue has no limits (the caller claims it as any queue),
-- else {'ok', then {member, {field, value, ...}} per claimed job, in claim order}.
bind_keys(
  'ready',
  'scheduled',
  'leases',
  'status:pending',
  'status:failed',
  'status:running',
  'paused',
  'all',
  'job:',
  'limits',
  'lheld',
  'lbuild',
  'kline:',
  'kwait',
  'kpark',
  'kopen:',
  'krun',
  'lk:window',
  'lk:started',
  'lk:held',
  'lk:served',
  'kidle',
  EXPIRY_KEYS
)
local MAX_KEYS = 1000 -- keys looked at per claim, at most (blocked ones at the front cost)
local PROMOTE_ROUNDS = 10
local PRUNE = 100 -- idle keys whose states one claim looks at, at most

if not limited() then
  return { 'unlimited' }
end
local out = { 'ok' }
if rcall('EXISTS', K.paused) == 1 then
  return out
end
local limits = read_limits()
local now = now_us()
local _, expiring = expire_due(now, CLAIM_EXPIRE_BATCH)
if expiring then
  return out -- the next claim goes on expiring before any job of the queue starts
end
build_lines()
-- Drop the states of keys with nothing running or waiting once no hold or rate window of
-- theirs is open (flow.forgettable): a returning key starts afresh (first in line, as a new
-- key). One still open waits in kidle until it closes; one that came back leaves kidle.
local idle = rcall('ZRANGEBYSCORE', K.kidle, '-inf', int(now), 'LIMIT', '0', int(PRUNE))
for _, key in ipairs(idle) do
  rcall('ZREM', K.kidle, key)
  if rcall('EXISTS', K['kopen:'] .. key) == 0 then
    local open_until = tonumber(rcall('HGET', K['lk:held'], key) or '0')
    if tonumber(rcall('HGET', K['lk:started'], key) or '0') > 0 then
      local ends = tonumber(rcall('HGET', K['lk:window'], key) or '0') + limits.period_us
      open_until = math.max(open_until, ends)
    end
    if open_until <= now then
      for _, name in ipairs({ 'lk:window', 'lk:started', 'lk:held', 'lk:served' }) do
        rcall('HDEL', K[name], key)
      end
    else
      rcall('ZADD', K.kidle, int(open_until), key)
    end
  end
end
for _ = 1, PROMOTE_ROUNDS do
  if not promote_due(now) then
    break
  end
end

-- choose: the queue's own state and limits first.
local window = math.floor(now / limits.period_us) * limits.period_us
local queue_state = current(key_state(''), window)
if queue_state.held > now then
  return out
end
local room = tonumber(ARGV[1])
if limits.concurrency then
  room = math.min(room, limits.concurrency - rcall('ZCARD', K['status:running']))
end
if limits.rate then
  room = math.min(room, limits.rate - queue_state.started)
end
if room <= 0 then
  return out
end

local now_ms = math.floor(now / 1000)

-- Up to n due members of a line, in claim order, as {score, member}: band by band (priority),
-- each band up to now; a member counts once it is in `ready` (due to the microsecond).
local function due_members(line, n)
  local found = {}
  local first = rcall('ZRANGE', line, '0', '0', 'WITHSCORES')
  while first[1] and #found < n do
    local low = math.floor(tonumber(first[2]) / BAND) * BAND
    local offset = 0
    -- (A member due this millisecond but not yet this microsecond is skipped: read on.)
    for _ = 1, 20 do
      local want = n - #found
      local got = rcall('ZRANGEBYSCORE', line, int(low), int(low + now_ms), 'WITHSCORES', 'LIMIT',
        int(offset), int(want))
      for i = 1, #got, 2 do
        if rcall('ZSCORE', K.ready, got[i]) then
          found[#found + 1] = { tonumber(got[i + 1]), got[i] }
        end
      end
      offset = offset + #got / 2
      if #got < 2 * want or #found >= n then
        break
      end
    end
    first = rcall('ZRANGEBYSCORE', line, int(low + BAND), '+inf', 'WITHSCORES', 'LIMIT', '0', '1')
  end
  return found
end

local parked = {}

-- flow.startable: how many of `key`'s jobs its own limits let start now (0: none), and with
-- `ordered` its head job when that one may start.
local function key_room(key, state)
  if state.held > now then
    return 0
  end
  local running = tonumber(rcall('ZSCORE', K.krun, key) or '0')
  if (limits.per_key and running >= limits.per_key) or (limits.ordered and running > 0) then
    -- Blocked until one of its running jobs stops, which unparks it (after the scan, which
    -- reads kwait by rank).
    parked[#parked + 1] = key
    return 0
  end
  local cap = room
  if limits.per_key then
    cap = math.min(cap, limits.per_key - running)
  end
  if limits.key_rate then
    cap = math.min(cap, limits.key_rate - state.started)
  end
  if limits.ordered and cap > 0 then
    -- Only the key's first unfinished job may run, and only when none of its jobs runs.
    if running > 0 then
      return 0
    end
    local head = rcall('ZRANGE', K['kopen:'] .. key, '0', '0', 'WITHSCORES')
    if not head[1] then
      return 0
    end
    local m = member(rcall('HGET', K['job:'] .. head[1], 'priority') or '0', head[2], head[1])
    local score = rcall('ZSCORE', K.ready, m)
    return score and 1 or 0, score and { { tonumber(score), m } }
  end
  return cap
end

-- The keys in turn, least recently served first, ties by key (kwait's own order): each
-- offers its first due job. Once `room` keys offer one, no later key can rank among the
-- first `room` turns; stop there.
local offers = {}
local looked = 0
local stop = false
while not stop do
  local chunk = rcall('ZRANGE', K.kwait, int(looked), int(looked + 99), 'WITHSCORES')
  if not chunk[1] then
    break
  end
  for i = 1, #chunk, 2 do
    local key, served = chunk[i], tonumber(chunk[i + 1])
    looked = looked + 1
    if #offers >= room or looked > MAX_KEYS then
      stop = true
      break
    end
    local state, cap, items
    if key == '' then
      state, cap = queue_state, room -- keyless jobs: limited by the queue's limits only
    else
      state = current(key_state(key), window)
      cap, items = key_room(key, state)
    end
    if cap > 0 then
      items = items or due_members(K['kline:'] .. key, 1)
      if items[1] then
        offers[#offers + 1] = { key = key, state = state, cap = cap, items = items }
      end
    end
  end
end
for _, key in ipairs(parked) do
  rcall('ZREM', K.kwait, key)
  rcall('ZADD', K.kpark, '0', key)
end
-- Too few keys for one job each: the keys offering take further turns.
if #offers < room then
  for _, offer in ipairs(offers) do
    if offer.cap > 1 then
      offer.items = due_members(K['kline:'] .. offer.key, math.min(offer.cap, room))
    end
  end
end

-- Rank (turn, served_at, key) and take the first `room`.
local ranked = {}
for _, offer in ipairs(offers) do
  for turn, item in ipairs(offer.items) do
    ranked[#ranked + 1] = { turn, offer.state.served, offer.key, item[2], offer }
  end
end
table.sort(ranked, function(x, y)
  for i = 1, 3 do
    if x[i] ~= y[i] then
      return x[i] < y[i]
    end
  end
  return false
end)

local expiry = now + tonumber(ARGV[2])
local started_at, expires_at = stamp(now), stamp(expiry)
local written = {}
local chosen = math.min(#ranked, room)
for i = 1, chosen do
  local m, offer = ranked[i][4], ranked[i][5]
  local key = K['job:'] .. string.sub(m, 21)
  out[#out + 1] = { m, claim_member(key, m, started_at, expiry, expires_at, ARGV[3], ARGV[4]) }
  local state = written[offer.key]
  if not state then
    state = { window = window, started = offer.state.started, held = offer.state.held }
    written[offer.key] = state
  end
  -- Starts are counted only while a rate applies to them (flow.choose).
  if limits.key_rate and offer.key ~= '' then
    state.started = state.started + 1
  end
  state.served = now
end
if chosen > 0 then
  -- The queue's row counts every start, keyed or not, for `rate`; its served_at is the
  -- keyless jobs' turn, moved only when one of them was served.
  local row = written[''] or { window = window, held = queue_state.held }
  row.started = queue_state.started + (limits.rate and chosen or 0)
  written[''] = row
end
for key, state in pairs(written) do
  rcall('HSET', K['lk:window'], key, int(state.window))
  rcall('HSET', K['lk:started'], key, int(state.started))
  if state.served then
    rcall('HSET', K['lk:served'], key, int(state.served))
    rcall('ZADD', K.kwait, 'XX', int(state.served), key)
  end
end
return out
