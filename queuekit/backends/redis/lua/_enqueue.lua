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
-- ('' = none), its parents (its edges joined by ',', '' = none; see 'Dependencies').
local ENQUEUE_KEYS = { 'ready', 'scheduled', 'all', 'status:pending', 'unique', 'signal', 'type:',
  'limits', 'lheld', 'kline:', 'kwait', 'kpark', 'kopen:', 'lk:served', 'seq', 'expiring',
  'status:waiting', 'workflow:', 'reach:' }
local ENQUEUE_FIELDS = 16

-- Where the values of a group's i-th job start: ARGV[j + 1] is its id.
local function job_args(b, i)
  return b + 2 + (i - 1) * ENQUEUE_FIELDS
end

-- The jobs an enqueue call stores, by id: their offset (set by check_group).
local NEW_JOBS = {}

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
      NEW_JOBS[id] = tonumber(ARGV[j + 2])
      if unique_key ~= '' then
        holders[unique_key] = id
      end
    end
  end
  return outcome
end

-- Once every group of the call is checked: whether each parent of the group's jobs to store
-- is stored, or stored by this call earlier in it (rule 1); else false and its id. (A job
-- answered by the holder of its unique key is not stored: a parent naming it is missing.)
local function check_parents(b, outcome)
  for i, result in ipairs(outcome) do
    local j = job_args(b, i)
    if result == true and ARGV[j + 16] ~= '' then
      local qp, offset = prefix_of(KEYS[NQ + i], ARGV[j + 1]), tonumber(ARGV[j + 2])
      for edge in string.gmatch(ARGV[j + 16], '[^,]+') do
        local parent, _, pqp = edge_end(qp, edge)
        local earlier = NEW_JOBS[parent]
        if earlier then
          if earlier >= offset then
            return false, parent
          end
        elseif rcall('EXISTS', pqp .. 'job:' .. parent) == 0 then
          return false, parent
        end
      end
    end
  end
  return true
end

-- Stored jobs with parents, left for link_new: {offset, key, id, edges, place in `out`}.
local LINKS = {}

-- Store the jobs check_group said to store, created at `now`; appends per job
-- '+<scheduled_at>' or its outcome to `out`, and wakes workers. A job with parents is stored
-- waiting, its edges and status left to link_new.
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
    if result == true then
      local j = job_args(b, i)
      last = math.max(last + 1, base + tonumber(ARGV[j + 2]))
      local id, seq, priority = ARGV[j + 1], int(last), ARGV[j + 5]
      local due = ARGV[j + 8] ~= '' and tonumber(ARGV[j + 8]) or now + tonumber(ARGV[j + 7])
      local scheduled_at = stamp(due)
      local key = KEYS[NQ + i]
      local edges, status = ARGV[j + 16], 'pending'
      if edges ~= '' then
        status = 'waiting'
      end
      rcall('HSET', key,
        'id', id, 'queue', queue, 'type', ARGV[j + 3], 'payload', ARGV[j + 4],
        'priority', priority, 'status', status, 'attempts', '0',
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
      end
      local expiry = ARGV[j + 13] ~= '' and tonumber(ARGV[j + 13])
        or ARGV[j + 14] ~= '' and now + tonumber(ARGV[j + 14])
      if expiry then
        rcall('HSET', key, 'expires_at', stamp(expiry))
      end
      local workflow = ARGV[j + 15]
      if workflow ~= '' then
        rcall('HSET', key, 'workflow_id', workflow)
        rcall('ZADD', K['workflow:'] .. workflow, seq, id)
      end
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
      else
        LINKS[#LINKS + 1] = { tonumber(ARGV[j + 2]), key, id, edges, #out + 1 }
      end
      stored = stored + 1
      out[#out + 1] = '+' .. scheduled_at
    else
      out[#out + 1] = result
    end
  end
  if stored > 0 then
    rcall('SET', K.seq, int(last))
  end
  signal(created)
end

-- Once every group of the call is stored: record the edges of each stored job with parents,
-- in call order (an earlier job of the call is decided before its dependents), and decide it
-- (rule 2): cancelled by a parent whose edge says cancel and that is dead or cancelled, else
-- waiting while a parent is unfinished, else pending as rule 3 releases it. Its outcome in
-- `out` becomes '+<scheduled_at>', '+<scheduled_at>|waiting' or
-- '+<scheduled_at>|cancelled|<parent id>|<its status>'.
local function link_new(now, out)
  table.sort(LINKS, function(x, y)
    return x[1] < y[1]
  end)
  local bound = K
  for _, new in ipairs(LINKS) do
    local _, key, id, edges, at = unpack(new)
    local qp = prefix_of(key, id)
    K = keys_of(qp)
    local open, by, how = 0, false, nil
    for edge in string.gmatch(edges, '[^,]+') do
      local parent, on_failure, pqp = edge_end(qp, edge)
      rcall('RPUSH', qp .. 'parents:' .. id, edge)
      rcall('RPUSH', pqp .. 'dependents:' .. parent, edge_to(id, on_failure, qp, pqp))
      local status = rcall('HGET', pqp .. 'job:' .. parent, 'status')
      if not TERMINAL[status] then
        open = open + 1
      elseif not by and on_failure == 'cancel' and status ~= 'completed' then
        by, how = parent, status
      end
    end
    local f = load(key)
    if by then
      rcall('HSET', key, 'last_error', 'parent ' .. by .. ' ' .. how, 'cancelled_by', by)
      finish(key, qp .. 'done:' .. id, id, f, 'cancelled', now)
      out[at] = out[at] .. '|cancelled|' .. by .. '|' .. how
    elseif open > 0 then
      rcall('HSET', key, 'open_parents', int(open))
      out[at] = out[at] .. '|waiting'
    else
      release(key, id, f, now)
      out[at] = '+' .. rcall('HGET', key, 'scheduled_at')
    end
  end
  LINKS = {}
  K = bound
  wake_released()
end
