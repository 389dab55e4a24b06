-- queuekit's SQLite statements, one per `-- name:` section, loaded by sqlfiles.py.
--
-- `{now}` is SQLite's clock in epoch seconds, read by the statement itself: a write statement
-- reads it once it holds the write lock (SQLite gives one instant to a whole statement), so a
-- lease or a due time never starts from a moment taken before a wait for the lock.

-- name: now
SELECT {now}

-- name: insert
INSERT INTO queuekit_jobs
    (id, queue, type, payload, priority, status, max_attempts, created_at, scheduled_at, unique_key,
     headers)
VALUES
    (:id, :queue, :type, :payload, :priority, 'pending', :max_attempts, {now},
     coalesce(:run_at, {now} + :delay), :unique_key,
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
    WHERE queue = :queue_{n} AND status IN ('pending', 'failed') AND scheduled_at <= {now}
      AND NOT EXISTS (SELECT 1 FROM queuekit_paused WHERE queue = :queue_{n})
    ORDER BY priority DESC, scheduled_at, seq
    LIMIT :limit_{n}
)

-- name: claim
-- One statement: it takes SQLite's write lock before it reads, as BEGIN IMMEDIATE would.
UPDATE queuekit_jobs
SET status = 'running', attempts = attempts + 1, started_at = {now},
    lease_expires_at = {now} + :lease, worker_id = :worker_id, lease_token = :lease_token
WHERE seq IN (
    SELECT seq FROM ({candidates})
    ORDER BY priority DESC, scheduled_at, seq
    LIMIT :limit
)
RETURNING *

-- name: heartbeat
-- :attempts is a JSON array of [id, lease token] pairs; returns the pairs still held.
UPDATE queuekit_jobs SET lease_expires_at = {now} + :lease
FROM (
    SELECT value ->> 0 AS id, value ->> 1 AS lease_token FROM json_each(:attempts)
) AS held
WHERE queuekit_jobs.id = held.id AND queuekit_jobs.lease_token = held.lease_token
  AND queuekit_jobs.status = 'running'
RETURNING queuekit_jobs.id, queuekit_jobs.lease_token

-- name: complete
-- complete, fail and snooze change the job only while the claim named by :lease_token holds it.
UPDATE queuekit_jobs
SET status = 'completed', finished_at = {now}, result = :result, lease_expires_at = NULL
WHERE id = :id AND lease_token = :lease_token AND status = 'running'
RETURNING status

-- name: fail
-- The worker decided: retry in :seconds, or dead when NULL.
UPDATE queuekit_jobs
SET status = CASE WHEN :seconds IS NULL THEN 'dead' ELSE 'failed' END,
    finished_at = CASE WHEN :seconds IS NULL THEN {now} END,
    scheduled_at = coalesce({now} + :seconds, scheduled_at),
    last_error = :error, lease_expires_at = NULL
WHERE id = :id AND lease_token = :lease_token AND status = 'running'
RETURNING status

-- name: snooze
UPDATE queuekit_jobs
SET status = 'pending', attempts = attempts - 1, scheduled_at = {now} + :seconds,
    lease_expires_at = NULL
WHERE id = :id AND lease_token = :lease_token AND status = 'running'
RETURNING status

-- name: rescue
-- The rule of Backend.rescue (backend.py): failed and claimable now while attempts are left.
UPDATE queuekit_jobs
SET status = CASE WHEN attempts >= max_attempts THEN 'dead' ELSE 'failed' END,
    finished_at = CASE WHEN attempts >= max_attempts THEN {now} END,
    scheduled_at = {now},
    last_error = 'lease expired', lease_expires_at = NULL
WHERE status = 'running' AND lease_expires_at <= {now}

-- name: next_due
SELECT min(scheduled_at) FROM queuekit_jobs
WHERE status IN ('pending', 'failed') AND queue IN (SELECT value FROM json_each(:queues))
  AND queue NOT IN (SELECT queue FROM queuekit_paused)

-- name: database_file
-- The main database's file, to tell whether a caller's connection (`connection=`) shares it.
SELECT file FROM pragma_database_list WHERE name = 'main'

-- name: data_version
-- Changes whenever another connection (another process) commits to the database.
PRAGMA data_version

-- name: get
SELECT * FROM queuekit_jobs WHERE id = :id

-- name: list
-- {filter}: ` AND <column> = :<column>` for each of queue, status and type in use, so each
-- variant gets a plan on the index it can use (list: queue and status; type: type).
SELECT * FROM queuekit_jobs
WHERE seq < :before {filter}
ORDER BY seq DESC
LIMIT :limit

-- name: list_queues
SELECT queue FROM queuekit_jobs UNION SELECT queue FROM queuekit_paused ORDER BY queue

-- name: pause
INSERT INTO queuekit_paused (queue, paused_at) VALUES (:queue, {now}) ON CONFLICT DO NOTHING

-- name: resume
DELETE FROM queuekit_paused WHERE queue = :queue

-- name: paused_queues
SELECT queue FROM queuekit_paused ORDER BY queue

-- name: counts
SELECT status, count(*) AS n,
       sum(status IN ('pending', 'failed') AND scheduled_at > {now}) AS scheduled,
       {now} - min(CASE WHEN status IN ('pending', 'failed') AND scheduled_at <= {now}
                        THEN scheduled_at END) AS ready_age,
       sum(finished_at > {now} - :window) AS recent,
       sum(status = 'running' AND lease_expires_at <= {now}) AS expired
FROM queuekit_jobs WHERE queue = :queue
GROUP BY status

-- Cancel, replay and delete act on up to :limit jobs, oldest first, chosen by {filter}: one job
-- (` AND j.id = :id`), or a batch of a bulk operation (` AND j.status = :status AND j.seq >
-- :after`, and the queue and type in use). They return the seqs of the jobs they changed.

-- name: cancel
UPDATE queuekit_jobs
SET status = 'cancelled', finished_at = {now}, lease_expires_at = NULL
WHERE seq IN (
    SELECT j.seq FROM queuekit_jobs AS j
    WHERE j.status IN ('pending', 'failed', 'running') {filter}
    ORDER BY j.seq
    LIMIT :limit
)
RETURNING seq

-- name: replay
-- A job whose unique key a live job holds is left as it is; of several chosen with one key,
-- only the oldest is replayed (the others then find it holding the key).
UPDATE queuekit_jobs
SET status = 'pending', attempts = 0, scheduled_at = {now}, started_at = NULL,
    finished_at = NULL, worker_id = NULL, result = NULL
WHERE seq IN (
    SELECT seq FROM (
        SELECT seq, unique_key,
               row_number() OVER (PARTITION BY queue, unique_key ORDER BY seq) AS nth
        FROM (
            SELECT j.seq, j.queue, j.unique_key FROM queuekit_jobs AS j
            WHERE j.status IN ('dead', 'cancelled') {filter}
              AND NOT EXISTS (
                  SELECT 1 FROM queuekit_jobs AS live
                  WHERE live.queue = j.queue AND live.unique_key = j.unique_key
                    AND live.status IN ('pending', 'running', 'failed')
              )
            ORDER BY j.seq
            LIMIT :limit
        )
    )
    WHERE unique_key IS NULL OR nth = 1
)
RETURNING seq

-- name: delete
DELETE FROM queuekit_jobs
WHERE seq IN (
    SELECT j.seq FROM queuekit_jobs AS j
    WHERE j.status != 'running' {filter}
    ORDER BY j.seq
    LIMIT :limit
)
RETURNING seq

-- name: prune
-- One batch: at most :limit jobs in :statuses that finished :older_than seconds ago or earlier.
DELETE FROM queuekit_jobs
WHERE seq IN (
    SELECT seq FROM queuekit_jobs
    WHERE status IN (SELECT value FROM json_each(:statuses)) AND finished_at <= {now} - :older_than
    LIMIT :limit
)
