-- A page of listing in one queue, newest first: the jobs of the sorted set `source` (by seq)
-- below `top`, those of `status` and `type` when given (the source is the set of one of them
-- already, a workflow's, or `all`), and of a search when given, `want` at most, looking at
-- `look` jobs at most.
-- KEYS: the bound queue keys, then the source set.  ARGV: top ('+inf' or '(<seq>'), want,
-- look, status ('' = any), type ('' = any), error text folded as queuekit.search.fold does
-- ('' = any), created at or after and created before (epoch µs; '' = no bound), workflow id
-- ('' = any), batch id ('' = any).
-- Returns {the seq of the last job looked at when more may follow, else ''; then per job its
-- seq and its fields}.
bind_keys('job:')
local source = KEYS[NQ + 1]
local want, status, job_type = tonumber(ARGV[2]), ARGV[4], ARGV[5]
local needle, after, before = ARGV[6], tonumber(ARGV[7]), tonumber(ARGV[8])
local workflow, batch = ARGV[9], ARGV[10]

-- Whether a job of this last error, creation stamp ("seconds.micros"), workflow and batch
-- is searched for.
local function searched(last_error, created_at, workflow_id, batch_id)
  if workflow ~= '' and workflow_id ~= workflow or batch ~= '' and batch_id ~= batch then
    return false
  end
  if needle ~= '' and not (last_error and string.find(string.lower(last_error), needle, 1, true)) then
    return false
  end
  if after or before then
    local s, f = string.match(created_at, '^(%d+)%.(%d+)$')
    local us = tonumber(s) * 1000000 + tonumber(f)
    return (not after or us >= after) and (not before or us < before)
  end
  return true
end

local seen = rcall('ZREVRANGEBYSCORE', source, ARGV[1], '-inf', 'WITHSCORES', 'LIMIT', '0', ARGV[3])
local out = { #seen == 2 * tonumber(ARGV[3]) and seen[#seen] or '' }
for i = 1, #seen, 2 do
  local key = K['job:'] .. seen[i]
  local v = rcall('HMGET', key, 'status', 'type', 'last_error', 'created_at', 'workflow_id',
    'batch_id')
  if v[1] and (status == '' or v[1] == status) and (job_type == '' or v[2] == job_type)
    and searched(v[3], v[4], v[5], v[6]) then
    out[#out + 1] = seen[i + 1]
    out[#out + 1] = rcall('HGETALL', key)
    if (#out - 1) / 2 >= want then
      out[1] = seen[i + 1]
      break
    end
  end
end
return out
