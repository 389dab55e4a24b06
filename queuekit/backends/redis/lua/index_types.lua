-- Add a batch of this queue's jobs to the type index (for jobs stored before it existed).
-- KEYS: the bound queue keys.  ARGV: after (seq), limit.
-- Returns the seq of the last job indexed, or '' when none is left.
bind_keys('all', 'type:', 'job:')
local limit = tonumber(ARGV[2])
local seen = rcall('ZRANGEBYSCORE', K.all, '(' .. ARGV[1], '+inf', 'WITHSCORES',
  'LIMIT', '0', int(limit))
for i = 1, #seen, 2 do
  local job_type = rcall('HGET', K['job:'] .. seen[i], 'type')
  if job_type then
    rcall('ZADD', K['type:'] .. job_type, seen[i + 1], seen[i])
  end
end
return #seen == 2 * limit and seen[#seen] or ''
