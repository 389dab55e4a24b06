-- Flow control: a job's `limit_key` (the tenant, account or order it belongs to; NULL when not
-- given), each queue's limits, and the state claims keep per (queue, key). Adding a nullable
-- column rewrites no row, so an existing database upgrades in place at once.
ALTER TABLE queuekit_jobs ADD COLUMN limit_key TEXT;

-- A queue's `Limits` as their compact JSON (`Limits.to_json`); a queue with a row here is
-- claimed under its limits, one without by the plain claim statement.
CREATE TABLE queuekit_limits (
    queue TEXT PRIMARY KEY CHECK (length(queue) BETWEEN 1 AND 128),
    limits TEXT NOT NULL
);

-- Per (queue, key) state of `queuekit.backends.flow`: key '' is the queue itself (its rate
-- window and hold) and its keyless jobs' turn. Times are epoch seconds, 0 meaning never.
CREATE TABLE queuekit_limit_keys (
    queue TEXT NOT NULL,
    key TEXT NOT NULL,
    "window" REAL NOT NULL DEFAULT 0,
    started INTEGER NOT NULL DEFAULT 0,
    held_until REAL NOT NULL DEFAULT 0,
    served_at REAL NOT NULL DEFAULT 0,
    PRIMARY KEY (queue, key)
) WITHOUT ROWID;

-- Serves a limited claim's reads per key: an ordered key's first unfinished job, and its
-- claimable jobs in enqueue order. Keyless jobs stay out, so other queues pay nothing for it.
CREATE INDEX queuekit_jobs_limit_key ON queuekit_jobs (queue, limit_key, seq)
    WHERE limit_key IS NOT NULL AND status IN ('pending', 'failed', 'running');

-- Finds a queue's holds in force without reading all its keys' rows: a queue with one is
-- claimed under its limits, even with none set.
CREATE INDEX queuekit_limit_keys_held ON queuekit_limit_keys (queue, held_until);
