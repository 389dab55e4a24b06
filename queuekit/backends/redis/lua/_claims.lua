-- queuekit: the keys a claim binds per queue, and claims under limits (follows _enqueue.lua,
-- last in every script's prelude).

-- The keys peek_claim binds for each queue; 'job:' is the prefix of the queue's job keys.
local CLAIM_KEYS = { 'ready', 'scheduled', 'leases', 'status:pending', 'status:failed',
  'status:running', 'paused', 'job:', 'limits', 'lheld', 'kline:', 'kwait', 'kpark', 'krun',
  'signal', 'expiring', 'expired', 'decided', 'done:', 'status:cancelled', 'finished:cancelled',
  'unique', 'watchers', 'kopen:', 'kidle', 'reach:' }

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
