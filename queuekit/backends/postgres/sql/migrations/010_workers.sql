-- queuekit's PostgreSQL schema, version 10: the worker registry.
--
-- One row per live worker, written by its beats (queuekit.presence), times on the server's
-- clock: a worker is listed until `expires_at`, and any beat deletes the rows past
-- `forget_at` (twice its ttl after its last beat). Delete and prune never touch it.
CREATE TABLE {schema}."{table}_workers" (
    id text COLLATE "C" NOT NULL,
    info text NOT NULL,
    started_at timestamptz NOT NULL,
    last_seen timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    forget_at timestamptz NOT NULL,
    draining boolean NOT NULL DEFAULT false,
    CONSTRAINT "{table}_workers_pkey" PRIMARY KEY (id)
);

CREATE INDEX "{table}_workers_forget" ON {schema}."{table}_workers" (forget_at);
