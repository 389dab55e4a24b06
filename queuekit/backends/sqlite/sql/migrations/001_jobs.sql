-- Times are epoch seconds (REAL) from SQLite's own clock; `seq` is enqueue order.
CREATE TABLE queuekit_jobs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    queue TEXT NOT NULL CHECK (length(queue) BETWEEN 1 AND 128),
    type TEXT NOT NULL CHECK (length(type) BETWEEN 1 AND 128),
    payload TEXT NOT NULL,
    priority INTEGER NOT NULL CHECK (priority BETWEEN 0 AND 1000),
    status TEXT NOT NULL CHECK (
        status IN ('pending', 'running', 'completed', 'failed', 'dead', 'cancelled')
    ),
    attempts INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    max_attempts INTEGER NOT NULL CHECK (max_attempts >= 1),
    created_at REAL NOT NULL,
    scheduled_at REAL NOT NULL,
    started_at REAL,
    finished_at REAL,
    lease_expires_at REAL,
    worker_id TEXT,
    last_error TEXT,
    unique_key TEXT,
    result TEXT
);

-- Serves the claim: only claimable rows, in claim order within a queue.
CREATE INDEX queuekit_jobs_claim ON queuekit_jobs (queue, priority DESC, scheduled_at, seq)
    WHERE status IN ('pending', 'failed');

-- Serves the rescuer.
CREATE INDEX queuekit_jobs_lease ON queuekit_jobs (lease_expires_at)
    WHERE status = 'running';

-- At most one live job per (queue, unique_key).
CREATE UNIQUE INDEX queuekit_jobs_unique ON queuekit_jobs (queue, unique_key)
    WHERE unique_key IS NOT NULL AND status IN ('pending', 'running', 'failed');

-- Serves listing by queue and status, and stats.
CREATE INDEX queuekit_jobs_list ON queuekit_jobs (queue, status, seq);

-- Serves listing by status alone, and pruning.
CREATE INDEX queuekit_jobs_finished ON queuekit_jobs (status, finished_at);
