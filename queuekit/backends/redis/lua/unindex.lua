-- Remove ids from the global index where they still point at this queue.
-- KEYS: index hash.  ARGV: queue, id...
local removed = 0
for i = 2, #ARGV do
  if rcall('HGET', KEYS[1], ARGV[i]) == ARGV[1] then
    rcall('HDEL', KEYS[1], ARGV[i])
    removed = removed + 1
  end
end
return removed
