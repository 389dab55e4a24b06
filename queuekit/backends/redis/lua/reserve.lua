-- Reserve job ids in one shard of the id -> queue index, before the jobs are stored in their
-- queues' slots. Runs in the shard's slot {<prefix>#<n>}; an enqueue sends one call per
-- shard its ids fall in, all in one round trip.
-- KEYS: the index shard.
-- ARGV: per job: id, queue, expected current owner ('' = none).
-- Returns {the server's clock (µs), then per job: '' if reserved, else the queue that owns
-- the id}; the clock is the seq base of the call's jobs (store_group).
local out = { int(now_us()) }
for i = 1, #ARGV, 3 do
  out[#out + 1] = reserve_id(KEYS[1], ARGV[i], ARGV[i + 1], ARGV[i + 2])
end
return out
