-- Reserve job ids in the global index (id -> queue) and take sequence numbers, before the
-- jobs are stored in their queues' slots. Runs in the {<prefix>} slot.
-- KEYS: index hash, queue-name set, seq counter.
-- ARGV: how many seqs to take, then per job: id, queue, expected current owner ('' = none).
-- Returns {first seq, then per job: '' if reserved, else the queue that owns the id}.
local count = tonumber(ARGV[1])
local last = rcall('INCRBY', KEYS[3], int(count))
local out = { int(last - count + 1) }
for i = 2, #ARGV, 3 do
  local id, queue, expected = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  local owner = rcall('HGET', KEYS[1], id)
  if not owner or owner == expected then
    rcall('HSET', KEYS[1], id, queue)
    owner = ''
  end
  out[#out + 1] = owner
  rcall('SADD', KEYS[2], queue)
end
return out
