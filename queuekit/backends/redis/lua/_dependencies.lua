-- queuekit: jobs waiting for other jobs, and what a parent's end or replay decides for them
-- (follows _lib.lua in every script's prelude).

-- Dependencies (the rules: Backend in queuekit/backend.py). A job with parents keeps its edges
-- in its queue's list 'parents:<id>', in the order given, and each parent the edges of its
-- dependents in 'dependents:<id>', in enqueue order (lists of their own, not '<job key>:...',
-- which the job whose id ends in ':parents' could own). An edge names the job at its other
-- end: '<id>|<on_failure>', then '|<queue>' when that job is in another queue (a single server
-- only: elsewhere enqueue refuses a parent in another slot). A waiting job counts its
-- unfinished parents in 'open_parents', so a parent's end costs O(its dependents) whatever
-- their parents; 'cancelled_by' names the parent whose end cancelled it, which a replay of
-- that parent undoes. The scripts that may reach a dependent bind 'reach:', the prefix of
-- every key they may touch for it: their queue's own '{<prefix>:<queue>}:' on a Cluster,
-- '{<prefix>:' on a single server (keys.py).
local TERMINAL = { completed = true, dead = true, cancelled = true }
-- A job whose edges say 'trigger' (a batch's on_dead callback) runs when a parent ends dead;
-- once every parent finished otherwise, it is cancelled with this error.
local NO_DEATH = 'no parent died'
local RELEASED = {} -- per queue key prefix: how many jobs decisions made claimable
-- The jobs decisions released, cancelled or brought back to waiting, to announce (events):
-- no `Queue` made those changes, and a script cannot publish on the events channel (another
-- slot on a Cluster), so its reply carries them (with_decided) and the caller publishes them.
-- Each is {kind, queue, id, type, at (a stamp), attempts, error ('' for none)}.
local DECIDED = {}

local function decided(kind, key, id, attempts, now, error)
  local v = rcall('HMGET', key, 'queue', 'type')
  DECIDED[#DECIDED + 1] = { kind, v[1], id, v[2], stamp(now), attempts, error or '' }
end

-- A script's `reply`, with the decisions it made when it made some ('decided', then the reply,
-- then each decision); calls.py takes them off before any caller sees the reply.
local function with_decided(reply)
  if #DECIDED == 0 then
    return reply
  end
  local out = { 'queuekit:decided', reply }
  for _, d in ipairs(DECIDED) do -- (not unpack: a cascade may be longer than Lua's stack)
    out[#out + 1] = d
  end
  return out
end

-- Every key of the queue whose keys start with `qp` ('{<prefix>:<queue>}:'), by name, as
-- bind_keys names them: what K is while a decision works on that queue's jobs. One per queue
-- and script call (an enqueue links thousands of jobs of one queue).
local QUEUE_KEYS = {}

local function keys_of(qp)
  local keys = QUEUE_KEYS[qp]
  if not keys then
    keys = setmetatable({}, {
      __index = function(_, name)
        return qp .. name
      end,
    })
    QUEUE_KEYS[qp] = keys
  end
  return keys
end

-- The prefix of a job's queue keys, from the key of its hash.
local function prefix_of(key, id)
  return string.sub(key, 1, #key - #id - 4)
end

-- The key prefix of the queue an edge names (`queue`; '' for none: the same queue), seen from a
-- job of queue key prefix `qp`.
local function edge_prefix(qp, queue)
  if queue == '' then
    return qp
  end
  return string.match(qp, '^{[^:]*:') .. queue .. '}:'
end

-- The job at the other end of `edge` (seen from a job of queue key prefix `qp`): its id, the
-- edge's on_failure, and the key prefix of its queue.
local function edge_end(qp, edge)
  local id, on_failure, queue = string.match(edge, '^([^|]+)|([^|]+)|?(.*)$')
  return id, on_failure, edge_prefix(qp, queue)
end

-- A job's edges as an enqueue sends them (joined by ','), from a job of queue key prefix `qp`,
-- each read once for every step of linking it: EDGE values per edge in one flat list (no
-- table per edge): the edge's text, the parent's id, the edge's on_failure, the key prefix
-- of the parent's queue, and the key of the parent's hash. (Ids, queue names and policies
-- hold neither ',' nor '|': validation.py.)
local EDGE = 5

local function parse_edges(qp, edges)
  local parsed, n = {}, 0
  for text, parent, on_failure, queue in string.gmatch(edges, '(([^,|]+)|([^,|]+)|?([^,]*))') do
    local pqp = edge_prefix(qp, queue)
    parsed[n + 1], parsed[n + 2], parsed[n + 3] = text, parent, on_failure
    parsed[n + 4], parsed[n + 5] = pqp, pqp .. 'job:' .. parent
    n = n + EDGE
  end
  return parsed
end

-- The edge naming job `id` (queue key prefix `qp`) as the job at the other end (`at`) keeps it.
local function edge_to(id, on_failure, qp, at)
  if qp == at then
    return id .. '|' .. on_failure
  end
  return id .. '|' .. on_failure .. '|' .. string.match(qp, '^{[^:]*:(.*)}:$')
end

-- (below: a job's end decides the jobs waiting for it, and may end them)
local decide_dependents


-- A waiting, pending, failed or running job ends: completed, dead or cancelled (the worker
-- stays), and decides the jobs waiting for it.
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
  release_unique(key, id, f.unique_key, status)
  notify(id, done_key)
  decide_dependents(prefix_of(key, id), id, status, now)
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
-- A waiting job none of whose parents is unfinished goes in line as an enqueue puts a job
-- there, due at its scheduled_at or now, whichever is later; expiry applies from now on.
-- K: its queue's keys.
local function release(key, id, f, now)
  local qp = prefix_of(key, id)
  local v = rcall('HMGET', key, 'scheduled_at', 'expires_at')
  local due = math.max(stamp_us(v[1]), now)
  rcall('HSET', key, 'status', 'pending', 'scheduled_at', stamp(due))
  move(id, f.seq, 'waiting', 'pending')
  make_claimable(member(f.priority, f.seq, id), due, now, f.limit_key)
  if f.limit_key then
    rcall('ZADD', K['kopen:'] .. f.limit_key, f.seq, id)
  end
  if v[2] then
    rcall('ZADD', K.expiring, int(stamp_us(v[2])), id)
  end
  RELEASED[qp] = (RELEASED[qp] or 0) + 1
end

-- One wake-up per job released, in the job's queue, as an enqueue pushes them.
local function wake_released()
  local bound = K
  for qp, n in pairs(RELEASED) do
    K = keys_of(qp)
    signal(n)
  end
  RELEASED = {}
  K = bound
end

-- A waiting job (K: its queue's keys) is cancelled by the end of `parent`, which a replay of
-- that parent undoes (reopen_dependents).
local function cancel_dependent(key, id, f, parent, error, now)
  rcall('HSET', key, 'last_error', error, 'cancelled_by', parent)
  finish(key, prefix_of(key, id) .. 'done:' .. id, id, f, 'cancelled', now)
  decided('cancelled', key, id, f.attempts, now, error)
end

-- Waiting job `id` (hash `key`, fields `f`; K: its queue's keys) learns that its parent
-- `parent`, over an edge of policy `on_failure`, ended as `how` (completed, dead, cancelled) or
-- was deleted before it ended ('deleted'), and is decided (rule 3): released at once by a dead
-- parent whose edge says trigger; cancelled by one whose edge says cancel that did not
-- complete; else it counts one unfinished parent less, and at none left it is released, or
-- cancelled if its edges say trigger (no parent died).
local function decide_edge(key, id, f, parent, on_failure, how, now)
  if on_failure == 'trigger' and how == 'dead' then
    release(key, id, f, now)
    decided('enqueued', key, id, f.attempts, now)
  elseif how ~= 'completed' and on_failure == 'cancel' then
    cancel_dependent(key, id, f, parent, 'parent ' .. parent .. ' ' .. how, now)
  elseif rcall('HINCRBY', key, 'open_parents', '-1') <= 0 then
    if on_failure == 'trigger' then
      cancel_dependent(key, id, f, parent, NO_DEATH, now)
    else
      release(key, id, f, now)
      decided('enqueued', key, id, f.attempts, now)
    end
  end
end

-- The jobs whose dependents are left to decide, while decide_dependents works (else nil).
local ENDED = nil

-- Job `id` (queue key prefix `qp`) ended as `outcome` (completed, dead or cancelled), or was
-- deleted before it ended ('deleted'): decide each job waiting for it (decide_edge). A dependent
-- cancelled ends in turn, and goes on the work list: a cascade of any depth, without recursion.
decide_dependents = function(qp, id, outcome, now)
  if rcall('EXISTS', qp .. 'dependents:' .. id) == 0 then
    return
  end
  if ENDED then -- a decision of the loop below ended it: that loop takes it
    ENDED[#ENDED + 1] = { qp, id, outcome }
    return
  end
  ENDED = { { qp, id, outcome } }
  local bound = K
  while #ENDED > 0 do
    local at, parent, how = unpack(table.remove(ENDED))
    for _, edge in ipairs(rcall('LRANGE', at .. 'dependents:' .. parent, '0', '-1')) do
      local child, on_failure, cqp = edge_end(at, edge)
      local key = cqp .. 'job:' .. child
      local f = load(key)
      if f.status == 'waiting' then
        K = keys_of(cqp)
        decide_edge(key, child, f, parent, on_failure, how, now)
      end
    end
  end
  ENDED = nil
  K = bound
  wake_released()
end

-- Job `id` (queue key prefix `qp`) left a terminal state (a replay): the jobs waiting for it
-- count it unfinished again, and those its end cancelled (over a trigger edge: those cancelled
-- because no parent died, whichever parent ended last) wait again, unless a parent whose edge
-- says cancel is dead, cancelled or deleted (then that one cancelled them) or another job took
-- their unique or debounce key meanwhile; those brought back left a terminal state too (rule
-- 4). A job brought back counts its unfinished parents afresh: a parent it counted then is not
-- counted again when that parent's own dependents come up later in the same replay.
local function reopen_dependents(qp, id, now)
  local todo, bound, counted = { { qp, id } }, K, {}
  while #todo > 0 do
    local at, parent = unpack(table.remove(todo))
    for _, edge in ipairs(rcall('LRANGE', at .. 'dependents:' .. parent, '0', '-1')) do
      local child, policy, cqp = edge_end(at, edge)
      local key = cqp .. 'job:' .. child
      local f = load(key)
      local v = f.status == 'cancelled' and rcall('HMGET', key, 'cancelled_by', 'last_error')
      if f.status == 'waiting' then
        if not (counted[key] and counted[key][at .. 'job:' .. parent]) then
          rcall('HINCRBY', key, 'open_parents', '1')
        end
      elseif v and (v[1] == parent or policy == 'trigger' and v[2] == NO_DEATH) then
        K = keys_of(cqp)
        local open, unfinished, by, how = 0, {}, false, nil
        for _, up in ipairs(rcall('LRANGE', cqp .. 'parents:' .. child, '0', '-1')) do
          local pid, on_failure, pqp = edge_end(cqp, up)
          local status = rcall('HGET', pqp .. 'job:' .. pid, 'status')
          if status and not TERMINAL[status] then
            open = open + 1
            unfinished[pqp .. 'job:' .. pid] = true
          elseif not by and on_failure == 'cancel' and status ~= 'completed' then
            by, how = pid, status or 'deleted'
          end
        end
        if by then
          rcall('HSET', key, 'cancelled_by', by, 'last_error', 'parent ' .. by .. ' ' .. how)
        elseif take_keys(key, child, f, now) then
          counted[key] = unfinished
          rcall('HSET', key, 'status', 'waiting', 'open_parents', int(open))
          rcall('HDEL', key, 'finished_at', 'last_error', 'cancelled_by')
          rcall('ZREM', K['finished:cancelled'], child)
          move(child, f.seq, 'cancelled', 'waiting')
          todo[#todo + 1] = { cqp, child }
          decided('waiting', key, child, f.attempts, now)
        end
        K = bound
      end
    end
  end
end
