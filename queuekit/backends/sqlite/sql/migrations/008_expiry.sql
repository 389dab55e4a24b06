-- Per-job expiry: a job not started by `expires_at` (epoch seconds) is cancelled as expired.
ALTER TABLE queuekit_jobs ADD COLUMN expires_at REAL;

-- The sweep's (`expire`): only jobs that can still expire, so it costs nothing without them.
CREATE INDEX queuekit_jobs_expiry ON queuekit_jobs (expires_at)
    WHERE expires_at IS NOT NULL AND status = 'pending' AND started_at IS NULL;
