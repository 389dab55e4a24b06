-- Ids in one of the queue's time-scored sets whose score is at most now - offset:
-- expired leases (the running set) or jobs finished long enough ago (a finished set).
-- KEYS: the bound queue keys.  ARGV: the set's name ('leases' or 'finished:<status>'),
-- offset_us, limit, how many of the first ids to pass over (those a sweep leaves).
bind_keys('leases', 'finished:completed', 'finished:dead', 'finished:cancelled')
local now = now_us()
local cutoff = int(now - tonumber(ARGV[2]))
return rcall('ZRANGEBYSCORE', K[ARGV[1]], '-inf', cutoff, 'LIMIT', ARGV[4], ARGV[3])
