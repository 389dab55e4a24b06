-- Add queue names to the set of them (in the {<prefix>} slot), beside an enqueue's
-- reservations: each backend names a queue once in a while, not at every enqueue.
-- KEYS: the queue-name set.  ARGV: queue names.
return rcall('SADD', KEYS[1], unpack(ARGV))
