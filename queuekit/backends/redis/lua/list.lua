-- A page of listing in one queue, newest first: the jobs of the sorted set `source` (by seq)
-- below `top`, those of `status` and `type` when given (the source is the set of one of them
-- already, or `all`), `want` at most, looking at `look` jobs at most.
-- KEYS: the bound queue keys, then the source set.  ARGV: top ('+inf' or '(<seq>'), want,
-- look, status ('' = any), type ('' = any).
-- Returns {the seq of the last job looked at when more may follow, else ''; then per job its
-- seq and its fields}.
bind_keys('job:')
local source = KEYS[NQ + 1]
local want, status, job_type = tonumber(ARGV[2]), ARGV[4], ARGV[5]
local seen = rcall('ZREVRANGEBYSCORE', source, ARGV[1], '-inf', 'WITHSCORES', 'LIMIT', '0', ARGV[3])
local out = { #seen == 2 * tonumber(ARGV[3]) and seen[#seen] or '' }
for i = 1, #seen, 2 do
  local key = K['job:'] .. seen[i]
  local v = rcall('HMGET', key, 'status', 'type')
  if v[1] and (status == '' or v[1] == status) and (job_type == '' or v[2] == job_type) then
    out[#out + 1] = seen[i + 1]
    out[#out + 1] = rcall('HGETALL', key)
    if (#out - 1) / 2 >= want then
      out[1] = seen[i + 1]
      break
    end
  end
end
return out
