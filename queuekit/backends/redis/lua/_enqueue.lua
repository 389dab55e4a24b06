-- queuekit: storing new jobs, and the id index they are reserved in (follows _jobs.lua in
-- every script's prelude).

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
-- limit_key ('' = none), expires_at_us ('' = none), expires_in_us ('' = none), workflow_id
-- ('' = none), its parents (its edges joined by ',', '' = none; see 'Dependencies'),
-- unique_states (comma-joined, '' = none), unique_for_us ('' = none), on_conflict,
-- debounce_key ('' = none), debounce_max_us ('' = none), batch_id ('' = none), how many
-- parents it has (more than its edges here when link.lua links the others).
local ENQUEUE_KEYS = { 'ready', 'scheduled', 'all', 'status:pending', 'unique', 'signal', 'type:',
  'limits', 'lheld', 'kline:', 'kwait', 'kpark', 'kopen:', 'lk:served', 'seq', 'expiring',
  'status:waiting', 'workflow:', 'job:', 'debounce', 'batch:', 'reach:' }
local ENQUEUE_FIELDS = 23

-- Where the values of a group's i-th job start: ARGV[j + 1] is its id.
local function job_args(b, i)
  return b + 2 + (i - 1) * ENQUEUE_FIELDS
end

-- When the job whose values start at ARGV[j + 1] asks to run (µs): run_at, or now + delay.
local function requested(j, now)
  return ARGV[j + 8] ~= '' and tonumber(ARGV[j + 8]) or now + tonumber(ARGV[j + 7])
end

-- The jobs an enqueue call stores, by id: their offset (set by check_group).
local NEW_JOBS = {}

-- Returns per job true (to store) or {id of the job holding its unique or debounce key,
-- whether the request rewrites it}; or false and the id when a job with that id exists
-- already. As the same enqueues one by one: a job of the call holds its keys for the later
-- ones. (A lapsed holder key_holder lets go is no change anyone can see, if nothing is stored.)
local function check_group(b, now)
  local n = tonumber(ARGV[b + 2])
  local holders = { unique = {}, debounce = {} }
  local outcome = {}
  for i = 1, n do
    local j = job_args(b, i)
    local id, taken = ARGV[j + 1], ARGV[j + 10]
    local hash, k = 'unique', ARGV[j + 9]
    if k == '' then
      hash, k = 'debounce', ARGV[j + 20]
    end
    local holder = false
    if k ~= '' then
      holder = holders[hash][k]
      if holder == nil then
        holder = key_holder(hash, k, now)
      end
    end
    if holder then
      outcome[i] = { holder, hash == 'debounce' or ARGV[j + 19] == 'replace' }
    elseif taken == '1' or rcall('EXISTS', KEYS[NQ + i]) == 1 then
      return false, id
    else
      outcome[i] = true
      NEW_JOBS[id] = tonumber(ARGV[j + 2])
      if k ~= '' then
        holders[hash][k] = id
      end
    end
  end
  return outcome
end

-- The status of each job stored before the call that a job of the call names as a parent,
-- by the key of its hash (false: no such job), read once however many jobs name it: nothing
-- a call does changes such a job (a decision made while linking reaches only the jobs after
-- the one decided, which are the call's own).
local PARENTS = {}

local function parent_status(at)
  local status = PARENTS[at]
  if status == nil then
    status = rcall('HGET', at, 'status')
    PARENTS[at] = status
  end
  return status
end

-- The edges of each job of the call to store that has parents, by the key of its hash, as
-- check_parents read them (parse_edges), for store_group to leave to link_new.
local EDGES = {}

-- Once every group of the call is checked: whether each parent of the group's jobs to store
-- is stored, or stored by this call earlier in it (rule 1); else false and its id. (A job
-- answered by the holder of its key is not stored: a parent naming it is missing.)
local function check_parents(b, outcome)
  for i, result in ipairs(outcome) do
    local j = job_args(b, i)
    if result == true and ARGV[j + 16] ~= '' then
      local key, offset = KEYS[NQ + i], tonumber(ARGV[j + 2])
      local edges = parse_edges(prefix_of(key, ARGV[j + 1]), ARGV[j + 16])
      for e = 1, #edges, EDGE do
        local parent = edges[e + 1]
        local earlier = NEW_JOBS[parent]
        if earlier then
          if earlier >= offset then
            return false, parent
          end
        elseif not parent_status(edges[e + 4]) then
          return false, parent
        end
      end
      EDGES[key] = edges
    end
  end
  return true
end

-- Stored jobs with parents, left for link_new: {offset, key, id, edges (parse_edges), place
-- in `out`}, in the order store_group stored them.
local LINKS = {}
-- The status of each job this call stored, by the key of its hash, as storing and then its
-- own linking left it: what linking a later job of the call reads of such a parent, instead
-- of asking Redis. Nothing else in a call ends a job it stored: a pending one stays pending,
-- and a waiting one is decided by its own edges alone (its parents are earlier in the call,
-- already linked, or stored before the call).
local STORED = {}
-- Requests answered by the holder of their key, left for answer_holders, in call order:
-- {the group's keys (K), place in `out`, holder id, whether to rewrite it, ARGV index j}.
local HELD = {}

-- Append field `name` and its value to `fields`, the arguments of an HSET.
local function put(fields, name, value)
  local n = #fields
  fields[n + 1] = name
  fields[n + 2] = value
end

-- Store the jobs check_group said to store, created at `now`; appends per job
-- '+<scheduled_at>', then '|waiting' for one stored waiting (or a placeholder for a request a
-- holder answers) to `out`, and wakes workers. A job with parents is stored waiting, its
-- edges and status left to link_new.
-- A job's seq (its place in enqueue order) is the queue's last seq + 1, or `base` (a reading
-- of the server's clock, in µs) plus the job's offset in the call if that is more: strict
-- enqueue order within the queue; across queues the clock's order, and the call's order
-- within one call (on a Cluster every queue's part takes the same base, the reservation's).
-- 16 digits of µs last until the year 2286; seqs of the counter earlier versions kept
-- ({<prefix>}:seq) are smaller, so their jobs come first.
local function store_group(b, outcome, now, base, out)
  local queue = ARGV[b + 1]
  local created_at = stamp(now)
  local stored, created = 0, 0
  local last = tonumber(rcall('GET', K.seq) or '0')
  for i, result in ipairs(outcome) do
    local j = job_args(b, i)
    if result == true then
      last = math.max(last + 1, base + tonumber(ARGV[j + 2]))
      local id, seq, priority = ARGV[j + 1], int(last), ARGV[j + 5]
      local due = requested(j, now)
      local key = KEYS[NQ + i]
      local edges, status = ARGV[j + 16], 'pending'
      if edges ~= '' then
        status = 'waiting'
      end
      -- The job's fields, set by one HSET: those every job has, then those it was given.
      local fields = {
        'id', id, 'queue', queue, 'type', ARGV[j + 3], 'payload', ARGV[j + 4],
        'priority', priority, 'status', status, 'attempts', '0',
        'max_attempts', ARGV[j + 6], 'created_at', created_at, 'seq', seq,
      }
      if status == 'waiting' then
        -- Every parent it has counts as unfinished from the start (see link_edges).
        put(fields, 'open_parents', ARGV[j + 23])
      end
      local debounce_key = ARGV[j + 20]
      if debounce_key ~= '' then
        put(fields, 'debounce_key', debounce_key)
        rcall('HSET', K.debounce, debounce_key, id)
        if ARGV[j + 21] ~= '' then
          local cap = now + tonumber(ARGV[j + 21])
          put(fields, 'debounce_until', stamp(cap))
          due = math.min(due, cap)
        end
      end
      local scheduled_at = stamp(due)
      put(fields, 'scheduled_at', scheduled_at)
      local unique_key = ARGV[j + 9]
      if unique_key ~= '' then
        put(fields, 'unique_key', unique_key)
        rcall('HSET', K.unique, unique_key, id)
        if ARGV[j + 17] ~= '' then
          put(fields, 'unique_states', ARGV[j + 17])
        end
        if ARGV[j + 18] ~= '' then
          put(fields, 'unique_until', stamp(now + tonumber(ARGV[j + 18])))
        end
      end
      if ARGV[j + 11] ~= '' then
        put(fields, 'headers', ARGV[j + 11])
      end
      local limit_key = ARGV[j + 12] ~= '' and ARGV[j + 12]
      if limit_key then
        put(fields, 'limit_key', limit_key)
      end
      local expiry = ARGV[j + 13] ~= '' and tonumber(ARGV[j + 13])
        or ARGV[j + 14] ~= '' and now + tonumber(ARGV[j + 14])
      if expiry then
        put(fields, 'expires_at', stamp(expiry))
      end
      local workflow = ARGV[j + 15]
      if workflow ~= '' then
        put(fields, 'workflow_id', workflow)
        rcall('ZADD', K['workflow:'] .. workflow, seq, id)
      end
      local batch = ARGV[j + 22]
      if batch ~= '' then
        put(fields, 'batch_id', batch)
        rcall('ZADD', K['batch:'] .. batch, seq, id)
      end
      rcall('HSET', key, unpack(fields))
      STORED[key] = status
      rcall('ZADD', K.all, seq, id)
      rcall('ZADD', K['status:' .. status], seq, id)
      rcall('ZADD', K['type:'] .. ARGV[j + 3], seq, id)
      if status == 'pending' then
        if limit_key then
          rcall('ZADD', K['kopen:'] .. limit_key, seq, id)
        end
        if expiry then
          rcall('ZADD', K.expiring, int(expiry), id)
        end
        make_claimable(member(priority, seq, id), due, now, limit_key)
        created = created + 1
        out[#out + 1] = '+' .. scheduled_at
      else
        out[#out + 1] = '+' .. scheduled_at .. '|waiting'
        LINKS[#LINKS + 1] = { tonumber(ARGV[j + 2]), key, id, EDGES[key], #out }
      end
      stored = stored + 1
    else
      out[#out + 1] = ''
      HELD[#HELD + 1] = { K, #out, result[1], result[2], j }
    end
  end
  if stored > 0 then
    rcall('SET', K.seq, int(last))
  end
  signal(created)
end

-- How many values one RPUSH takes: well under what unpack may put on Lua's stack.
local PUSH_CHUNK = 1000

-- Append `values` to list `list`, in a few calls, not one per value.
local function push(list, values)
  for first = 1, #values, PUSH_CHUNK do
    rcall('RPUSH', list, unpack(values, first, math.min(#values, first + PUSH_CHUNK - 1)))
  end
end

-- The edges link_edges adds to each parent's list of dependents, by the list's key, pushed
-- by push_dependents once the jobs are linked: a fan-out's children of one parent in one
-- RPUSH, not one each. No such list is read meanwhile: a job's dependents are read when it
-- ends, and a job of the call that ends while linked (cancelled by its parent's end) is
-- linked before the jobs that wait for it. A list given one edge (as each parent of a fan-in
-- is) holds it as it is, with no table made for it; a list given several, a table of them.
local DEPENDENTS = {}

local function add_dependent(list, edge)
  local edges = DEPENDENTS[list]
  if edges == nil then
    DEPENDENTS[list] = edge
  elseif type(edges) == 'string' then
    DEPENDENTS[list] = { edges, edge }
  else
    edges[#edges + 1] = edge
  end
end

local function push_dependents()
  for list, edges in pairs(DEPENDENTS) do
    if type(edges) == 'string' then
      rcall('RPUSH', list, edges)
    else
      push(list, edges)
    end
  end
  DEPENDENTS = {}
end

-- Link waiting job `id` (hash `key`; K: its queue's keys) to more of its parents, `edges`
-- (parse_edges): each edge goes on its parents' list and its parent's dependents' list, and a
-- parent that has finished already decides the job as its end would have (decide_edge), while
-- the job waits. Its 'open_parents' counted every parent it has as unfinished from the start,
-- so however many calls its edges take (link.lua), the job is released only once every edge
-- is linked. `status` is the job's now; returns it after.
local function link_edges(key, id, edges, now, status)
  local qp = prefix_of(key, id)
  if #edges == EDGE then
    rcall('RPUSH', qp .. 'parents:' .. id, edges[1])
  else
    local texts, n = {}, 0
    for e = 1, #edges, EDGE do
      n = n + 1
      texts[n] = edges[e]
    end
    push(qp .. 'parents:' .. id, texts)
  end
  for e = 1, #edges, EDGE do
    local parent, on_failure, pqp = edges[e + 1], edges[e + 2], edges[e + 3]
    add_dependent(pqp .. 'dependents:' .. parent, edge_to(id, on_failure, qp, pqp))
    if status == 'waiting' then
      local at = edges[e + 4]
      local ended = STORED[at] or parent_status(at)
      if TERMINAL[ended] then
        decide_edge(key, id, load(key), parent, on_failure, ended, now)
        status = rcall('HGET', key, 'status')
      end
    end
  end
  return status
end

-- The outcome of a job linked to its parents: '+<scheduled_at>', then '|waiting' when it
-- waits; or, cancelled at once, its fields.
local function linked(key)
  local v = rcall('HMGET', key, 'status', 'scheduled_at')
  if v[1] == 'cancelled' then
    return rcall('HGETALL', key)
  end
  return '+' .. v[2] .. (v[1] == 'waiting' and '|waiting' or '')
end

-- Once every group of the call is stored: link each stored job with parents, in call order
-- (an earlier job of the call is decided before its dependents; store_group counted every
-- parent it has as unfinished: its edges here, or more when link.lua brings the rest), and
-- set its outcome in `out` when it no longer waits (rule 2: the parents that have finished
-- decide it as their end would have). Its decisions are no events: the job is announced as
-- it is returned.
local function link_new(now, out)
  -- (stored in call order unless a call of several queues stored them queue by queue)
  for n = 2, #LINKS do
    if LINKS[n - 1][1] > LINKS[n][1] then
      table.sort(LINKS, function(x, y)
        return x[1] < y[1]
      end)
      break
    end
  end
  local bound = K
  for _, new in ipairs(LINKS) do
    local _, key, id, edges, at = unpack(new)
    K = keys_of(prefix_of(key, id))
    -- (stored waiting by this call, and decided by nothing before its own edges)
    STORED[key] = link_edges(key, id, edges, now, 'waiting')
    if STORED[key] ~= 'waiting' then
      out[at] = linked(key)
    end
  end
  push_dependents()
  LINKS = {}
  EDGES = {}
  DECIDED = {}
  K = bound
  wake_released()
end

-- An enqueue found job `id` (hash `key`) holding its key, and rewrites it unless it started
-- (and is not waiting for a retry) or finished: the request's payload, and its scheduled time
-- `due` (µs), never later than the job's debounce_until. Returns whether it is due now.
local function rewrite(key, id, payload, due, now)
  local f = load(key)
  if f.status ~= 'waiting' and f.status ~= 'pending' and f.status ~= 'failed' then
    return false
  end
  local cap = rcall('HGET', key, 'debounce_until')
  if cap then
    due = math.min(due, stamp_us(cap))
  end
  rcall('HSET', key, 'payload', payload, 'scheduled_at', stamp(due))
  if f.status == 'waiting' then -- (released at its scheduled_at or later)
    return false
  end
  local m = member(f.priority, f.seq, id)
  rcall('ZREM', K.ready, m)
  rcall('ZREM', K.scheduled, m)
  make_claimable(m, due, now, f.limit_key)
  return due <= now
end

-- Once every job of the call is stored and linked: each request a holder answered, in call
-- order, rewrites it if it asks to, and gets its fields as they then are in `out`; a holder
-- made due wakes a worker, as an enqueue does.
local function answer_holders(now, out)
  local bound = K
  for _, held in ipairs(HELD) do
    local keys, at, id, rewrites, j = unpack(held)
    K = keys
    local key = K['job:'] .. id
    if rewrites and rewrite(key, id, ARGV[j + 4], requested(j, now), now) then
      signal(1)
    end
    out[at] = rcall('HGETALL', key)
  end
  HELD = {}
  K = bound
end
