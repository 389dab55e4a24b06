-- queuekit's PostgreSQL schema, version 6: flow control (queue limits and limit keys).
--
-- `limit_key` is the key a queue's per-key limits count a job under (a tenant, an account);
-- NULL when the job has none. A nullable column without a default changes only the catalog,
-- and NOT VALID skips a scan for a check no existing row can fail (they are all NULL).
ALTER TABLE {jobs} ADD COLUMN limit_key text COLLATE "C";
ALTER TABLE {jobs} ADD CONSTRAINT "{table}_lkey_length" CHECK (
    length(limit_key) BETWEEN 1 AND 512
) NOT VALID;

-- {limits}: a queue's `Limits`, as the compact JSON text `Limits.to_json` writes, and until
-- when any key of it (or the queue itself) is held. A queue with limits, or with a hold not
-- yet over, is skipped by the claim statement (as a paused one is) and claimed in a
-- transaction that first locks its row here, so its claims run one at a time across every
-- process. `limits` is NULL for a queue that has only been held: a hold applies with or
-- without limits, and this row lets the claim statement tell so with one lookup, however
-- many keys are held. Delete and prune never touch this table or the next.
CREATE TABLE {limits} (
    held_until double precision NOT NULL DEFAULT 0,
    queue text COLLATE "C" NOT NULL,
    limits text,
    CONSTRAINT "{table}_limits_pkey" PRIMARY KEY (queue),
    CONSTRAINT "{table}_limits_queue" CHECK (length(queue) BETWEEN 1 AND 128)
);

-- {limit_keys}: the state of each (queue, key) the limits track, key '' being the queue itself
-- (see queuekit/backends/flow.py): the start of its current rate window and the starts in it,
-- a hold, and when it was last served (a keyed key's, while it has jobs, is kept in
-- {limit_ready} instead, see migration 7). Rate windows are written only while a rate is
-- set. Times are epoch seconds on the server's clock
-- (`extract(epoch FROM now())`), as `flow.choose` computes with them.
CREATE TABLE {limit_keys} (
    "window" double precision NOT NULL DEFAULT 0,
    held_until double precision NOT NULL DEFAULT 0,
    served_at double precision NOT NULL DEFAULT 0,
    started integer NOT NULL DEFAULT 0,
    queue text COLLATE "C" NOT NULL,
    key text COLLATE "C" NOT NULL,
    CONSTRAINT "{table}_lkeys_pkey" PRIMARY KEY (queue, key)
);

-- Serve the limited claim (`limited_read`), and hold only the unfinished jobs that carry a
-- key, so jobs without one (every job of a queue without limits, usually) cost nothing more.
-- `{table}_lkey_claim`: the keys with claimable jobs (a loose index scan) and each key's jobs
-- in claim order. `{table}_lkey_seq`: each key's first unfinished job, for `ordered` limits.
-- Building them reads the whole table once, holding off writes meanwhile: on a large table,
-- migrate at a quiet moment.
CREATE INDEX "{table}_lkey_claim" ON {jobs} (queue, limit_key, priority DESC, scheduled_at, seq)
    WHERE limit_key IS NOT NULL AND status IN ('pending', 'failed');
CREATE INDEX "{table}_lkey_seq" ON {jobs} (queue, limit_key, seq)
    WHERE limit_key IS NOT NULL AND status IN ('pending', 'running', 'failed');
