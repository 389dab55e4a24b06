-- The fencing token of a job's latest claim: random and new for every claim, so a worker
-- still holding an older claim (replayed or re-created since) can never match it. Adding a
-- nullable column rewrites no row. (worker_id now stays on a job after its attempt ends.)
ALTER TABLE queuekit_jobs ADD COLUMN lease_token TEXT;
