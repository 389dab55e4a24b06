-- Reserve job ids in the global index (id -> queue) and take sequence numbers, before the
-- jobs are stored in their queues' slots. Runs in the {<prefix>} slot.
-- KEYS: index hash, queue-name set, seq counter.
-- ARGV: how many seqs to take, then per job: id, queue, expected current owner ('' = none).
-- Returns {first seq, then per job: '' if reserved, else the queue that owns the id}.
local out = { int(take_seqs(KEYS[3], tonumber(ARGV[1]))) }
for i = 2, #ARGV, 3 do
  out[#out + 1] = reserve_id(KEYS[1], ARGV[i], ARGV[i + 1], ARGV[i + 2])
  rcall('SADD', KEYS[2], ARGV[i + 1])
end
return out
