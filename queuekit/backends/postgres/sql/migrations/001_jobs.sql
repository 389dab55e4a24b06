-- queuekit's PostgreSQL schema, version 1.
--
-- Placeholders, filled in by queuekit with validated and quoted identifiers:
--   {jobs}   the schema-qualified jobs table, e.g. "public"."queuekit_jobs"
--   {table}  the bare table name, used to name indexes and constraints
--
-- Times are timestamptz from the server's clock. Payload and result are `json`, not `jsonb`:
-- `json` keeps the exact text queuekit encoded (jsonb turns 1e16 into the integer
-- 10000000000000000 and rejects "\u0000"), costs less to write, and still supports the
-- ->, ->> operators for ad-hoc queries. Columns are ordered for alignment: 8-byte fields first,
-- then the 2-byte counters, then the variable-length ones. Names use the "C" collation: byte
-- order, like the other backends' sorting, and cheaper comparisons in every index.
CREATE TABLE {jobs} (
    seq bigint GENERATED ALWAYS AS IDENTITY,
    created_at timestamptz NOT NULL,
    scheduled_at timestamptz NOT NULL,
    started_at timestamptz,
    finished_at timestamptz,
    lease_expires_at timestamptz,
    priority smallint NOT NULL,
    attempts smallint NOT NULL DEFAULT 0,
    max_attempts smallint NOT NULL,
    id text COLLATE "C" NOT NULL,
    queue text COLLATE "C" NOT NULL,
    type text COLLATE "C" NOT NULL,
    status text COLLATE "C" NOT NULL,
    worker_id text COLLATE "C",
    unique_key text COLLATE "C",
    last_error text,
    payload json NOT NULL,
    result json,
    CONSTRAINT "{table}_pkey" PRIMARY KEY (seq),
    CONSTRAINT "{table}_id_key" UNIQUE (id),
    CONSTRAINT "{table}_id_length" CHECK (length(id) BETWEEN 1 AND 128),
    CONSTRAINT "{table}_queue_length" CHECK (length(queue) BETWEEN 1 AND 128),
    CONSTRAINT "{table}_type_length" CHECK (length(type) BETWEEN 1 AND 128),
    CONSTRAINT "{table}_unique_key_length" CHECK (length(unique_key) BETWEEN 1 AND 512),
    CONSTRAINT "{table}_status" CHECK (
        status IN ('pending', 'running', 'completed', 'failed', 'dead', 'cancelled')
    ),
    CONSTRAINT "{table}_priority_range" CHECK (priority BETWEEN 0 AND 1000),
    CONSTRAINT "{table}_max_attempts_range" CHECK (max_attempts BETWEEN 1 AND 1000),
    -- A claim increments attempts only on a claimable job, which always has attempts left
    -- (fail and rescue send a job with none left to dead; snooze gives the attempt back; replay
    -- resets to 0), so 0 <= attempts <= max_attempts holds in every state.
    CONSTRAINT "{table}_attempts_range" CHECK (attempts BETWEEN 0 AND max_attempts),
    -- A running job holds a lease and a worker; no other job does.
    CONSTRAINT "{table}_lease_iff_running" CHECK (
        ((status = 'running') = (lease_expires_at IS NOT NULL))
        AND ((status = 'running') = (worker_id IS NOT NULL))
    ),
    -- A job is finished exactly when it is terminal (prune relies on it).
    CONSTRAINT "{table}_finished_iff_terminal" CHECK (
        (status IN ('completed', 'dead', 'cancelled')) = (finished_at IS NOT NULL)
    )
);

-- Serves the claim, and only the claim: claimable rows, in claim order within a queue.
CREATE INDEX "{table}_claim" ON {jobs} (queue, priority DESC, scheduled_at, seq)
    WHERE status IN ('pending', 'failed');

-- Serves the rescuer: running jobs by lease expiry.
CREATE INDEX "{table}_lease" ON {jobs} (lease_expires_at)
    WHERE status = 'running';

-- The database enforces at most one live job per (queue, unique_key); enqueue uses it as the
-- ON CONFLICT arbiter, so bulk inserts are deduplicated too.
CREATE UNIQUE INDEX "{table}_unique" ON {jobs} (queue, unique_key)
    WHERE unique_key IS NOT NULL AND status IN ('pending', 'running', 'failed');

-- Serves list_jobs by queue (and status), list_queues (a loose index scan) and stats.
CREATE INDEX "{table}_list" ON {jobs} (queue, status, seq);

-- Serves pruning: finished jobs by status and age.
CREATE INDEX "{table}_finished" ON {jobs} (status, finished_at)
    WHERE finished_at IS NOT NULL;

-- A queue table churns: vacuum it after a fixed number of dead rows rather than a share of a
-- table that may hold a long retention of finished jobs. docs/postgres.md explains the values.
ALTER TABLE {jobs} SET (
    autovacuum_vacuum_scale_factor = 0.01,
    autovacuum_vacuum_threshold = 1000,
    autovacuum_analyze_scale_factor = 0.02,
    autovacuum_analyze_threshold = 1000
);
