-- queuekit's PostgreSQL schema, version 8: per-job expiry.
--
-- A job not started by `expires_at` is cancelled as expired. A nullable column without a
-- default changes only the catalog. The claim index is left as it is: a claim steps over an
-- expired job by a filter on the rows it reads anyway, so jobs without an expiry pay nothing.
-- The sweep (`expire`) reads this partial index, which holds only the jobs that can still
-- expire: empty, and free to keep up, while no job has an expiry. Building it on an existing
-- table reads the table once (every row is outside it).
ALTER TABLE {jobs} ADD COLUMN expires_at timestamptz;
CREATE INDEX "{table}_expiry" ON {jobs} (expires_at)
    WHERE expires_at IS NOT NULL AND status = 'pending' AND started_at IS NULL;
