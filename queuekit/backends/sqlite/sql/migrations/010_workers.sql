-- The worker registry: one row per live worker, written by its beats (queuekit.presence).
-- Times are epoch seconds on SQLite's clock: a worker is listed until `expires_at`, and any
-- beat deletes the rows past `forget_at` (twice its ttl after its last beat).
CREATE TABLE queuekit_workers (
    id TEXT NOT NULL PRIMARY KEY,
    info TEXT NOT NULL,
    started_at REAL NOT NULL,
    last_seen REAL NOT NULL,
    expires_at REAL NOT NULL,
    forget_at REAL NOT NULL,
    draining INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;

CREATE INDEX queuekit_workers_forget ON queuekit_workers (forget_at);
