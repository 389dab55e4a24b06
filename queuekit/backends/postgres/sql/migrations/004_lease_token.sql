-- queuekit's PostgreSQL schema, version 4: lease tokens, and the worker kept on finished jobs.
--
-- `lease_token` is the fencing token of a job's latest claim: random and new for every claim,
-- so a worker still holding an older claim of the same job id (since cancelled and replayed,
-- or deleted and re-created) can never match it, where the attempt count, which replay
-- resets, could. A nullable column without a default changes only the catalog.
ALTER TABLE {jobs} ADD COLUMN lease_token text COLLATE "C";

-- `worker_id` now names the worker of the latest claim after its attempt ends, so only the
-- lease still goes with `running` exactly. NOT VALID skips a scan of the table under this
-- lock: every existing row meets the new rule, since the one it replaces was stricter.
ALTER TABLE {jobs} DROP CONSTRAINT "{table}_lease_iff_running";
ALTER TABLE {jobs} ADD CONSTRAINT "{table}_lease_iff_running" CHECK (
    ((status = 'running') = (lease_expires_at IS NOT NULL))
    AND (status <> 'running' OR worker_id IS NOT NULL)
) NOT VALID;
