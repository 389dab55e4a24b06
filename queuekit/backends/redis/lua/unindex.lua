-- Remove ids from one shard of the id -> queue index where they still point at their queue.
-- KEYS: the index shard.  ARGV: per id: id, queue.
local removed = 0
for i = 1, #ARGV, 2 do
  if rcall('HGET', KEYS[1], ARGV[i]) == ARGV[i + 1] then
    rcall('HDEL', KEYS[1], ARGV[i])
    removed = removed + 1
  end
end
return removed
