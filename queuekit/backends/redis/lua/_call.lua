-- queuekit: how scripts call Redis (the production prelude).
local rcall = redis.call
