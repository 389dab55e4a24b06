-- name: now
SELECT (julianday('now') - 2440587.5) * 86400.0

-- name: insert
INSERT INTO queuekit_jobs
    (id, queue, type, payload, priority, status, max_attempts, created_at, scheduled_at, unique_key,
     headers)
VALUES
    (:id, :queue, :type, :payload, :priority, 'pending', :max_attempts, :now, :scheduled_at, :unique_key,
     :headers)
ON CONFLICT DO NOTHING
RETURNING *

-- name: live_unique
SELECT * FROM queuekit_jobs
WHERE queue = :queue AND unique_key = :unique_key AND status IN ('pending', 'running', 'failed')

-- name: claim_candidates
-- One per queue in the claim, joined by UNION ALL; {n} numbers the queue's parameters.
SELECT * FROM (
    SELECT seq, priority, scheduled_at FROM queuekit_jobs
    WHERE queue = :queue_{n} AND status IN ('pending', 'failed') AND scheduled_at <= :now
      AND NOT EXISTS (SELECT 1 FROM queuekit_paused WHERE queue = :queue_{n})
    ORDER BY priority DESC, scheduled_at, seq
    LIMIT :limit_{n}
)

-- name: claim
-- One statement: it takes SQLite's write lock before it reads, as BEGIN IMMEDIATE would.
UPDATE queuekit_jobs
SET status = 'running', attempts = attempts + 1, started_at = :now,
    lease_expires_at = :now + :lease, worker_id = :worker_id
WHERE seq IN (
    SELECT seq FROM ({candidates})
    ORDER BY priority DESC, scheduled_at, seq
    LIMIT :limit
)
RETURNING *

-- name: heartbeat
-- :attempts is a JSON array of [id, attempt] pairs; returns the pairs still held.
UPDATE queuekit_jobs SET lease_expires_at = :now + :lease
FROM (
    SELECT value ->> 0 AS id, value ->> 1 AS attempt FROM json_each(:attempts)
) AS held
WHERE queuekit_jobs.id = held.id AND queuekit_jobs.attempts = held.attempt
  AND queuekit_jobs.status = 'running'
RETURNING queuekit_jobs.id, queuekit_jobs.attempts

-- name: complete
UPDATE queuekit_jobs
SET status = 'completed', finished_at = :now, result = :result,
    lease_expires_at = NULL, worker_id = NULL
WHERE id = :id AND attempts = :attempt AND status = 'running'
RETURNING status

-- name: fail
UPDATE queuekit_jobs
SET status = CASE WHEN :seconds IS NULL OR attempts >= max_attempts THEN 'dead' ELSE 'failed' END,
    finished_at = CASE WHEN :seconds IS NULL OR attempts >= max_attempts THEN :now END,
    scheduled_at = CASE WHEN :seconds IS NULL OR attempts >= max_attempts
        THEN scheduled_at ELSE :now + :seconds END,
    last_error = :error, lease_expires_at = NULL, worker_id = NULL
WHERE id = :id AND attempts = :attempt AND status = 'running'
RETURNING status

-- name: snooze
UPDATE queuekit_jobs
SET status = 'pending', attempts = attempts - 1, scheduled_at = :now + :seconds,
    lease_expires_at = NULL, worker_id = NULL
WHERE id = :id AND attempts = :attempt AND status = 'running'
RETURNING status

-- name: rescue
UPDATE queuekit_jobs
SET status = CASE WHEN attempts >= max_attempts THEN 'dead' ELSE 'failed' END,
    finished_at = CASE WHEN attempts >= max_attempts THEN :now END,
    scheduled_at = :now,
    last_error = 'lease expired', lease_expires_at = NULL, worker_id = NULL
WHERE status = 'running' AND lease_expires_at <= :now

-- name: next_due
SELECT min(scheduled_at) FROM queuekit_jobs
WHERE status IN ('pending', 'failed') AND queue IN (SELECT value FROM json_each(:queues))
  AND queue NOT IN (SELECT queue FROM queuekit_paused)

-- name: data_version
-- Changes whenever another connection (another process) commits to the database.
PRAGMA data_version

-- name: get
SELECT * FROM queuekit_jobs WHERE id = :id

-- name: list
SELECT * FROM queuekit_jobs
WHERE (:queue IS NULL OR queue = :queue)
  AND (:status IS NULL OR status = :status)
  AND (:before IS NULL OR seq < :before)
ORDER BY seq DESC
LIMIT :limit

-- name: list_queues
SELECT queue FROM queuekit_jobs UNION SELECT queue FROM queuekit_paused ORDER BY queue

-- name: pause
INSERT INTO queuekit_paused (queue, paused_at) VALUES (:queue, :now) ON CONFLICT DO NOTHING

-- name: resume
DELETE FROM queuekit_paused WHERE queue = :queue

-- name: paused_queues
SELECT queue FROM queuekit_paused ORDER BY queue

-- name: counts
SELECT status, count(*) AS n,
       sum(status IN ('pending', 'failed') AND scheduled_at > :now) AS scheduled,
       min(CASE WHEN status IN ('pending', 'failed') AND scheduled_at <= :now THEN scheduled_at END)
           AS oldest_ready,
       sum(finished_at > :now - :window) AS recent,
       sum(status = 'running' AND lease_expires_at <= :now) AS expired
FROM queuekit_jobs WHERE queue = :queue
GROUP BY status

-- name: cancel
UPDATE queuekit_jobs
SET status = 'cancelled', finished_at = :now, lease_expires_at = NULL, worker_id = NULL
WHERE id = :id AND status IN ('pending', 'failed', 'running')

-- name: replay
UPDATE queuekit_jobs
SET status = 'pending', attempts = 0, scheduled_at = :now, started_at = NULL,
    finished_at = NULL, result = NULL
WHERE id = :id AND status IN ('dead', 'cancelled')
  AND NOT EXISTS (
      SELECT 1 FROM queuekit_jobs AS live
      WHERE live.queue = queuekit_jobs.queue AND live.unique_key = queuekit_jobs.unique_key
        AND live.status IN ('pending', 'running', 'failed')
  )

-- name: delete
DELETE FROM queuekit_jobs WHERE id = :id AND status != 'running'

-- name: purge
DELETE FROM queuekit_jobs WHERE queue = :queue AND status = :status AND status != 'running'

-- name: prune
DELETE FROM queuekit_jobs
WHERE status IN (SELECT value FROM json_each(:statuses)) AND finished_at <= :now - :older_than
