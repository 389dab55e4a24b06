-- queuekit's SQLite statements, one per `-- name:` section, loaded by sqlfiles.py.
--
-- `{now}` is SQLite's clock in epoch seconds, read by the statement itself: a write statement
-- reads it once it holds the write lock (SQLite gives one instant to a whole statement), so a
-- lease or a due time never starts from a moment taken before a wait for the lock.

-- name: now
SELECT {now}

-- name: insert
-- A job without parents, pending. A debounced job is due no later than its debounce_until. A job
-- whose id or key is taken is not stored (keys.py finds the holder).
INSERT INTO queuekit_jobs
    (id, queue, type, payload, priority, status, max_attempts, created_at, scheduled_at, unique_key,
     headers, limit_key, expires_at, workflow_id, has_dependents, unique_states, unique_until,
     debounce_key, debounce_until, batch_id)
VALUES (:id, :queue, :type, :payload, :priority, 'pending', :max_attempts, {now},
        CASE WHEN :debounce_max IS NULL THEN coalesce(:run_at, {now} + :delay)
             ELSE min(coalesce(:run_at, {now} + :delay), {now} + :debounce_max) END,
        :unique_key, :headers, :limit_key, coalesce(:expires_at, {now} + :expires_in),
        :workflow_id, :has_dependents, :unique_states,
        CASE WHEN :unique_for IS NOT NULL THEN {now} + :unique_for END,
        :debounce_key, CASE WHEN :debounce_max IS NOT NULL THEN {now} + :debounce_max END, :batch_id)
ON CONFLICT DO NOTHING
RETURNING *

-- name: insert_after
-- :parents is a JSON array of [parent id, on_failure] (they exist, stored before the call or
-- earlier in it: edges.py checks). The job is decided by them as the triggers of migrations 15
-- and 16 decide: cancelled by the first whose edge says cancel that ended dead or cancelled;
-- with TRIGGER edges (all or none are), released by one that ended dead, else waiting while any
-- has not finished, else cancelled ("no parent died", by the first); else waiting while any has
-- not finished, else pending, due no earlier than now. :has_dependents is 1 for a job a later
-- job of the same call names as a parent (flag_parents marks those stored before the call).
-- Otherwise as `insert`.
INSERT INTO queuekit_jobs
    (id, queue, type, payload, priority, status, max_attempts, created_at, scheduled_at, unique_key,
     headers, limit_key, expires_at, workflow_id, open_parents, cancelled_by, last_error,
     finished_at, has_dependents, unique_states, unique_until, debounce_key, debounce_until,
     batch_id)
SELECT :id, :queue, :type, :payload, :priority,
       CASE WHEN f.id IS NOT NULL THEN 'cancelled' WHEN a.died THEN 'pending'
            WHEN a.open > 0 THEN 'waiting' WHEN a.spared IS NOT NULL THEN 'cancelled'
            ELSE 'pending' END,
       :max_attempts, {now},
       max(CASE WHEN :debounce_max IS NULL THEN coalesce(:run_at, {now} + :delay)
                ELSE min(coalesce(:run_at, {now} + :delay), {now} + :debounce_max) END,
           {now}),
       :unique_key, :headers, :limit_key, coalesce(:expires_at, {now} + :expires_in), :workflow_id,
       a.open, coalesce(f.id, a.spared),
       CASE WHEN f.id IS NOT NULL THEN 'parent ' || f.id || ' ' || f.status
            WHEN a.spared IS NOT NULL THEN 'no parent died' END,
       CASE WHEN f.id IS NOT NULL OR a.spared IS NOT NULL THEN {now} END, :has_dependents,
       :unique_states, CASE WHEN :unique_for IS NOT NULL THEN {now} + :unique_for END,
       :debounce_key, CASE WHEN :debounce_max IS NOT NULL THEN {now} + :debounce_max END, :batch_id
FROM (
    SELECT open, died,
           CASE WHEN died = 0 AND open = 0 AND :parents ->> '$[0][1]' = 'trigger'
                THEN :parents ->> '$[0][0]' END AS spared
    FROM (
        SELECT count(*) FILTER (WHERE j.status NOT IN ('completed', 'dead', 'cancelled')) AS open,
               count(*) FILTER (WHERE j.status = 'dead' AND p.value ->> 1 = 'trigger') AS died
        FROM json_each(:parents) AS p
        JOIN queuekit_jobs AS j ON j.id = p.value ->> 0
    )
) AS a LEFT JOIN (
    SELECT j.id, j.status FROM json_each(:parents) AS p
    JOIN queuekit_jobs AS j ON j.id = p.value ->> 0
    WHERE p.value ->> 1 = 'cancel' AND j.status IN ('dead', 'cancelled')
    ORDER BY p.key
    LIMIT 1
) AS f
WHERE true
ON CONFLICT DO NOTHING
RETURNING *

-- name: flag_parents
-- The first statement of an enqueue call with parents, so a caller's transaction takes the
-- write lock before it reads them: from now on their end fires the triggers (has_dependents).
-- :ids is a JSON array of every parent id the call names; returns those stored already.
UPDATE queuekit_jobs SET has_dependents = 1
WHERE id IN (SELECT value FROM json_each(:ids))
RETURNING id

-- name: insert_edges
-- The last statement of an enqueue call with parents: the edges of every job it stored, as a
-- JSON array of [child id, position, parent id, on_failure].
INSERT INTO queuekit_jobs_parents (child_id, position, parent_id, on_failure)
SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3 FROM json_each(:edges)

-- name: take_unique
-- An enqueue with :unique_key met its holder in :queue (the job in the unique index, migration
-- 16). A finished one whose hold is over is let go (`released`: the enqueue then stores its own
-- job); with :replace, one that has not started or waits for a retry gets :payload and the
-- request's due time. Returns no row when the holder is left as it is (`unique_holder` reads it).
UPDATE queuekit_jobs
SET unique_states = CASE WHEN status IN ('completed', 'dead', 'cancelled') THEN NULL
                         ELSE unique_states END,
    payload = CASE WHEN status IN ('completed', 'dead', 'cancelled') THEN payload ELSE :payload END,
    scheduled_at = CASE WHEN status IN ('completed', 'dead', 'cancelled') THEN scheduled_at
                        ELSE coalesce(:run_at, {now} + :delay) END
WHERE queue = :queue AND unique_key = :unique_key
  AND (status IN ('waiting', 'pending', 'running', 'failed')
       OR instr(',' || unique_states || ',', ',' || status || ',') > 0)
  AND ((status IN ('completed', 'dead', 'cancelled') AND unique_until <= {now})
       OR (:replace AND status IN ('waiting', 'pending', 'failed')))
RETURNING *, status IN ('completed', 'dead', 'cancelled') AS released

-- name: unique_holder
SELECT * FROM queuekit_jobs
WHERE queue = :queue AND unique_key = :unique_key
  AND (status IN ('waiting', 'pending', 'running', 'failed')
       OR instr(',' || unique_states || ',', ',' || status || ',') > 0)

-- name: take_debounced
-- An enqueue with :debounce_key met the unstarted job holding it in :queue: it gets :payload and
-- the request's due time, never later than its own debounce_until.
UPDATE queuekit_jobs
SET payload = :payload,
    scheduled_at = min(coalesce(:run_at, {now} + :delay),
                       coalesce(debounce_until, coalesce(:run_at, {now} + :delay)))
WHERE queue = :queue AND debounce_key = :debounce_key AND status IN ('waiting', 'pending')
RETURNING *

-- name: claim_candidates
-- One per queue in the claim, joined by UNION ALL; {n} numbers the queue's parameters. A queue
-- with limits or a hold is left to the limited claim (limited.py), as a paused one is left alone.
-- An expired job is stepped over (read anyway, no index needed): `expire` cancels it.
SELECT * FROM (
    SELECT seq, priority, scheduled_at FROM queuekit_jobs
    WHERE queue = :queue_{n} AND status IN ('pending', 'failed') AND scheduled_at <= {now}
      AND (expires_at IS NULL OR started_at IS NOT NULL OR expires_at > {now})
      AND NOT EXISTS (SELECT 1 FROM queuekit_paused WHERE queue = :queue_{n})
      AND NOT EXISTS (SELECT 1 FROM queuekit_limits WHERE queue = :queue_{n})
      AND NOT EXISTS (
          SELECT 1 FROM queuekit_limit_keys WHERE queue = :queue_{n} AND held_until > {now}
      )
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
-- :attempts is a JSON array of [id, lease token, progress, note, output]; returns the
-- (id, lease token) pairs still held. What each attempt reported since its last heartbeat is
-- null where unchanged: with a progress its note is written too (null clearing it); output is
-- JSON text. Fenced like the lease: a lost attempt's reports match no row.
UPDATE queuekit_jobs SET lease_expires_at = {now} + :lease,
    progress = CASE WHEN held.progress IS NULL THEN queuekit_jobs.progress ELSE held.progress END,
    progress_note = CASE WHEN held.progress IS NULL THEN queuekit_jobs.progress_note
                         ELSE held.note END,
    output = coalesce(held.output, queuekit_jobs.output)
FROM (
    SELECT value ->> 0 AS id, value ->> 1 AS lease_token, value ->> 2 AS progress,
           value ->> 3 AS note, value ->> 4 AS output
    FROM json_each(:attempts)
) AS held
WHERE queuekit_jobs.id = held.id AND queuekit_jobs.lease_token = held.lease_token
  AND queuekit_jobs.status = 'running'
RETURNING queuekit_jobs.id, queuekit_jobs.lease_token

-- name: ended_attempt
-- Not a statement: `{ended_attempt(<outcome>; <error>)}` in the statements that end a running
-- job's attempt (complete, fail, snooze, rescue, cancel) is the job's new `history`: its
-- latest {history_limit} attempts, this one added as ending now, its error cut to
-- {history_error_chars} characters (history.py fills in the bounds and reads the records).
-- Names are the job's columns as they were before the statement. Times are written as text
-- of 17 digits (JSON numbers would keep 15), so they read back as the same instant as the
-- columns.
json_insert(
    CASE WHEN json_array_length(coalesce(history, '[]')) < {history_limit}
         THEN coalesce(history, '[]')
         ELSE (SELECT json_group_array(json(value)) FROM json_each(history)
               WHERE key > json_array_length(history) - {history_limit})
    END,
    '$[#]',
    json_object('attempt', attempts, 'worker', worker_id,
                'started', printf('%!.17g', started_at), 'finished', printf('%!.17g', {now}),
                'outcome', {outcome},
                'error', substr({error}, 1, {history_error_chars}))
)

-- name: complete
-- complete, fail and snooze change the job only while the claim named by :lease_token holds it.
-- `limited`: the job's queue has limits, so its stopping may free a slot waiters want.
UPDATE queuekit_jobs
SET status = 'completed', finished_at = {now}, result = :result, lease_expires_at = NULL,
    history = {ended_attempt('completed'; NULL)}
WHERE id = :id AND lease_token = :lease_token AND status = 'running'
RETURNING status, EXISTS (SELECT 1 FROM queuekit_limits AS l WHERE l.queue = queuekit_jobs.queue) AS limited,
          has_dependents

-- name: fail
-- The worker decided: retry in :seconds, or dead when NULL.
UPDATE queuekit_jobs
SET status = CASE WHEN :seconds IS NULL THEN 'dead' ELSE 'failed' END,
    finished_at = CASE WHEN :seconds IS NULL THEN {now} END,
    scheduled_at = coalesce({now} + :seconds, scheduled_at),
    last_error = :error, lease_expires_at = NULL,
    history = {ended_attempt(CASE WHEN :seconds IS NULL THEN 'dead' ELSE 'failed' END; :error)}
WHERE id = :id AND lease_token = :lease_token AND status = 'running'
RETURNING status, EXISTS (SELECT 1 FROM queuekit_limits AS l WHERE l.queue = queuekit_jobs.queue) AS limited,
          has_dependents

-- name: snooze
UPDATE queuekit_jobs
SET status = 'pending', attempts = attempts - 1, scheduled_at = {now} + :seconds,
    lease_expires_at = NULL, history = {ended_attempt('snoozed'; NULL)}
WHERE id = :id AND lease_token = :lease_token AND status = 'running'
RETURNING status, EXISTS (SELECT 1 FROM queuekit_limits AS l WHERE l.queue = queuekit_jobs.queue) AS limited,
          has_dependents

-- name: rescue
-- The rule of Backend.rescue (backend.py): failed and claimable now while attempts are left.
UPDATE queuekit_jobs
SET status = CASE WHEN attempts >= max_attempts THEN 'dead' ELSE 'failed' END,
    finished_at = CASE WHEN attempts >= max_attempts THEN {now} END,
    scheduled_at = {now},
    last_error = 'lease expired', lease_expires_at = NULL,
    history = {ended_attempt(CASE WHEN attempts >= max_attempts THEN 'dead' ELSE 'failed' END;
                             'lease expired')}
WHERE status = 'running' AND lease_expires_at <= {now}
RETURNING status, has_dependents

-- name: next_due
-- A queue with limits or a hold counts only jobs due later: those due now wait for its limits,
-- and a waiter looking at them would return at once, again and again, while the limits hold.
-- Expired jobs are not due: no claim takes them (`expire` cancels them).
SELECT min(scheduled_at) FROM queuekit_jobs
WHERE status IN ('pending', 'failed') AND queue IN (SELECT value FROM json_each(:queues))
  AND (expires_at IS NULL OR started_at IS NOT NULL OR expires_at > {now})
  AND queue NOT IN (SELECT queue FROM queuekit_paused)
  AND (scheduled_at > {now} OR queue NOT IN (
      SELECT q.value FROM json_each(:queues) AS q
      WHERE EXISTS (SELECT 1 FROM queuekit_limits WHERE queue = q.value)
         OR EXISTS (SELECT 1 FROM queuekit_limit_keys WHERE queue = q.value AND held_until > {now})
  ))

-- name: limited_waits
-- The waited-on queues under limits (see limits_of), their running jobs and their newest
-- pending job: a waiter returns when another process's commit lowered the running count (a
-- slot may be free), enqueued, or changed the limits.
SELECT q.value AS queue,
       (SELECT limits FROM queuekit_limits WHERE queue = q.value) AS limits,
       (SELECT count(*) FROM queuekit_jobs WHERE queue = q.value AND status = 'running')
           AS running,
       (SELECT max(seq) FROM queuekit_jobs WHERE queue = q.value AND status = 'pending') AS newest
FROM json_each(:queues) AS q
WHERE EXISTS (SELECT 1 FROM queuekit_limits WHERE queue = q.value)
   OR EXISTS (SELECT 1 FROM queuekit_limit_keys WHERE queue = q.value AND held_until > {now})

-- name: database_file
-- The main database's file, to tell whether a caller's connection (`connection=`) shares it.
SELECT file FROM pragma_database_list WHERE name = 'main'

-- name: data_version
-- Changes whenever another connection (another process) commits to the database.
PRAGMA data_version

-- name: get
SELECT * FROM queuekit_jobs WHERE id = :id

-- name: get_many
-- :ids is a JSON array of job ids.
SELECT * FROM queuekit_jobs WHERE id IN (SELECT value FROM json_each(:ids))

-- name: edges_of
-- The parents of the jobs of :ids (a JSON array), in the order given, and their dependents, in
-- enqueue order: rows of (kind, job_id, other, on_failure), by kind and job_id in that order. A
-- dependent is one enqueued after the job (an edge to an older job of the same id is not its).
SELECT 'parent' AS kind, e.child_id AS job_id, e.parent_id AS other, e.on_failure,
       e.position AS place
FROM queuekit_jobs_parents AS e
WHERE e.child_id IN (SELECT value FROM json_each(:ids))
UNION ALL
SELECT 'dependent', e.parent_id, e.child_id, NULL, c.seq
FROM queuekit_jobs_parents AS e
JOIN queuekit_jobs AS p ON p.id = e.parent_id
JOIN queuekit_jobs AS c ON c.id = e.child_id AND c.seq > p.seq
WHERE e.parent_id IN (SELECT value FROM json_each(:ids))
ORDER BY kind, job_id, place

-- name: list
-- {filter}: ` AND <column> = :<column>` for each of queue, status and type in use, so each
-- variant gets a plan on the index it can use (list: queue and status; type: type).
SELECT * FROM queuekit_jobs
WHERE seq < :before {filter}
ORDER BY seq DESC
LIMIT :limit

-- The conditions a search adds to `list`'s {filter} (see `queuekit.search`): checked on the
-- rows the index picks by the other filters, so a rare match reads many of them. SQLite's
-- lower() folds ASCII letters only, as every backend does.

-- name: search_error
instr(lower(last_error), :error) > 0

-- name: search_created_after
created_at >= :created_after

-- name: search_created_before
created_at < :created_before

-- name: search_workflow_id
-- Read from its own index (migration 15) when no other filter is in use.
workflow_id = :workflow_id

-- name: search_batch_id
-- Read from its own index (migration 16) when no other filter is in use.
batch_id = :batch_id

-- name: batch_counts
SELECT status, count(*) AS n FROM queuekit_jobs WHERE batch_id = :batch_id GROUP BY status

-- name: list_queues
SELECT queue FROM queuekit_jobs UNION SELECT queue FROM queuekit_paused ORDER BY queue

-- name: pause
INSERT INTO queuekit_paused (queue, paused_at) VALUES (:queue, {now}) ON CONFLICT DO NOTHING

-- name: resume
DELETE FROM queuekit_paused WHERE queue = :queue

-- name: paused_queues
SELECT queue FROM queuekit_paused ORDER BY queue

-- name: counts
-- Per status of queue :queue, from its counts (migration 17); :window is the success window
-- (s). Read from the jobs themselves: the scheduled jobs due within the current minute (the
-- rest are told by their minute), the oldest due job (the head of each priority's range of
-- the claim index, found by a loose index scan) and the leases run out. `recent` counts whole
-- minutes: the window reaches up to a minute further back.
WITH RECURSIVE clock AS (
    SELECT {now} AS now, CAST({now} / 60 AS INTEGER) + 1 AS next_minute
),
priorities AS (
    SELECT (SELECT priority FROM queuekit_jobs
            WHERE queue = :queue AND status IN ('pending', 'failed')
            ORDER BY priority DESC LIMIT 1) AS priority
    UNION ALL
    SELECT (SELECT j.priority FROM queuekit_jobs AS j
            WHERE j.queue = :queue AND j.status IN ('pending', 'failed')
              AND j.priority < p.priority
            ORDER BY j.priority DESC LIMIT 1)
    FROM priorities AS p
    WHERE p.priority IS NOT NULL
),
heads AS (
    SELECT (SELECT j.scheduled_at FROM queuekit_jobs AS j
            WHERE j.queue = :queue AND j.status IN ('pending', 'failed')
              AND j.priority = p.priority
            ORDER BY j.scheduled_at LIMIT 1) AS first_due,
           (SELECT count(*) FROM queuekit_jobs AS j
            WHERE j.queue = :queue AND j.status IN ('pending', 'failed')
              AND j.priority = p.priority
              AND j.scheduled_at > c.now AND j.scheduled_at < c.next_minute * 60)
               AS due_this_minute
    FROM priorities AS p, clock AS c
    WHERE p.priority IS NOT NULL
),
totals AS (
    SELECT status,
           sum(n) AS n,
           sum(CASE WHEN minute >= c.next_minute THEN n END) AS later,
           sum(CASE WHEN (minute + 1) * 60 > c.now - :window THEN n END) AS recent
    FROM queuekit_counts, clock AS c
    WHERE queue = :queue
    GROUP BY status
)
SELECT s.status,
       t.n,
       CASE WHEN s.status = 'pending' THEN
           (SELECT coalesce(sum(later), 0) FROM totals WHERE status IN ('pending', 'failed'))
           + (SELECT coalesce(sum(due_this_minute), 0) FROM heads)
       END AS scheduled,
       CASE WHEN s.status = 'pending' THEN
           (SELECT c.now - min(first_due) FROM heads, clock AS c
            HAVING min(first_due) <= c.now)
       END AS ready_age,
       t.recent,
       CASE WHEN s.status = 'running' THEN
           (SELECT count(*) FROM queuekit_jobs, clock AS c
            WHERE status = 'running' AND lease_expires_at <= c.now AND queue = :queue)
       END AS expired
FROM (SELECT column1 AS status
      FROM (VALUES ('waiting'), ('pending'), ('running'), ('failed'), ('completed'), ('dead'),
                   ('cancelled'))) AS s
LEFT JOIN totals AS t ON t.status = s.status

-- name: fold_counts
-- Take the counts whose minute is no longer needed apart at :now (a pending or failed job's
-- once the minute is over, a finished one's once it is out of the success window :window);
-- the caller adds them to their status's minute 0.
DELETE FROM queuekit_counts
WHERE minute <> 0
  AND (minute + 1) * 60 <= CASE WHEN status IN ('pending', 'failed') THEN :now
                                ELSE :now - :window END
RETURNING queue, status, n

-- name: add_to_count
INSERT INTO queuekit_counts (queue, status, minute, n) VALUES (:queue, :status, :minute, :n)
ON CONFLICT DO UPDATE SET n = n + excluded.n

-- Cancel, replay, run_now and delete act on up to :limit jobs, oldest first, chosen by {filter}: one job
-- (` AND j.id = :id`), or a batch of a bulk operation (` AND j.status = :status AND j.seq >
-- :after`, and the queue and type in use). They return the seqs of the jobs they changed.

-- name: cancel
UPDATE queuekit_jobs
SET status = 'cancelled', finished_at = {now}, lease_expires_at = NULL,
    history = CASE WHEN status = 'running' THEN {ended_attempt('cancelled'; NULL)} ELSE history END
WHERE seq IN (
    SELECT j.seq FROM queuekit_jobs AS j
    WHERE j.status IN ('waiting', 'pending', 'failed', 'running') {filter}
    ORDER BY j.seq
    LIMIT :limit
)
RETURNING seq, EXISTS (SELECT 1 FROM queuekit_limits AS l WHERE l.queue = queuekit_jobs.queue) AS limited,
          has_dependents

-- name: expire
-- One batch of the sweep: up to :limit jobs that never started and expired by now are
-- cancelled as `cancel` cancels them (the triggers keep limit_ready in step), as expired.
UPDATE queuekit_jobs
SET status = 'cancelled', finished_at = {now}, last_error = 'expired'
WHERE seq IN (
    SELECT seq FROM queuekit_jobs INDEXED BY queuekit_jobs_expiry
    WHERE expires_at IS NOT NULL AND status = 'pending' AND started_at IS NULL
      AND expires_at <= {now}
    LIMIT :limit
)

-- name: let_go
-- Run before `replay`, with its {filter} and :limit: the finished holders whose hold is over of
-- the keys of the jobs it may replay leave the unique index, as an enqueue lets them go (a
-- replayed job takes its key again, and the index would refuse it). It may let go of a few
-- more than the replay needs, whose holds are over all the same.
UPDATE queuekit_jobs SET unique_states = NULL
WHERE seq IN (
    SELECT h.seq FROM (
        SELECT j.seq, j.queue, j.unique_key FROM queuekit_jobs AS j
        WHERE j.status IN ('dead', 'cancelled') AND j.unique_key IS NOT NULL {filter}
        ORDER BY j.seq
        LIMIT :limit
    ) AS r
    CROSS JOIN queuekit_jobs AS h ON h.queue = r.queue AND h.unique_key = r.unique_key
    WHERE h.seq <> r.seq AND h.status IN ('completed', 'dead', 'cancelled')
      AND instr(',' || h.unique_states || ',', ',' || h.status || ',') > 0
      AND h.unique_until <= {now}
)

-- name: replay
-- A job whose unique key another job holds (a live one, or one finished in its unique_states:
-- `let_go`, just before in the same transaction, let go of those whose hold is over; reading
-- the clock again here could find a hold over that `let_go` found not over, and the unique
-- index would refuse the replayed row), or whose
-- debounce key an unstarted job holds, is left as it is; of several chosen with one key, only
-- the oldest is replayed (the others then find it holding the key). A chosen job that the
-- replay of an earlier one brought back to waiting (a dependent it had cancelled: migration 15)
-- is left waiting, as SQLite does not look at the chosen rows again: each change applies only
-- to a job still dead or cancelled.
UPDATE queuekit_jobs
SET status = CASE WHEN status IN ('dead', 'cancelled') THEN 'pending' ELSE status END,
    attempts = CASE WHEN status IN ('dead', 'cancelled') THEN 0 ELSE attempts END,
    scheduled_at = CASE WHEN status IN ('dead', 'cancelled') THEN {now} ELSE scheduled_at END,
    started_at = CASE WHEN status IN ('dead', 'cancelled') THEN NULL ELSE started_at END,
    finished_at = CASE WHEN status IN ('dead', 'cancelled') THEN NULL ELSE finished_at END,
    worker_id = CASE WHEN status IN ('dead', 'cancelled') THEN NULL ELSE worker_id END,
    result = CASE WHEN status IN ('dead', 'cancelled') THEN NULL ELSE result END,
    expires_at = CASE WHEN status IN ('dead', 'cancelled') THEN NULL ELSE expires_at END,
    cancelled_by = CASE WHEN status IN ('dead', 'cancelled') THEN NULL ELSE cancelled_by END
WHERE seq IN (
    SELECT seq FROM (
        SELECT seq, unique_key, debounce_key,
               row_number() OVER (PARTITION BY queue, unique_key, debounce_key ORDER BY seq)
                   AS nth
        FROM (
            SELECT j.seq, j.queue, j.unique_key, j.debounce_key FROM queuekit_jobs AS j
            WHERE j.status IN ('dead', 'cancelled') {filter}
              AND NOT EXISTS (
                  SELECT 1 FROM queuekit_jobs AS h
                  WHERE h.queue = j.queue AND h.unique_key = j.unique_key AND h.seq <> j.seq
                    AND (h.status IN ('waiting', 'pending', 'running', 'failed')
                         OR instr(',' || h.unique_states || ',', ',' || h.status || ',') > 0)
              )
              AND NOT EXISTS (
                  SELECT 1 FROM queuekit_jobs AS h
                  WHERE h.queue = j.queue AND h.debounce_key = j.debounce_key
                    AND h.status IN ('waiting', 'pending')
              )
            ORDER BY j.seq
            LIMIT :limit
        )
    )
    WHERE (unique_key IS NULL AND debounce_key IS NULL) OR nth = 1
)
RETURNING seq, has_dependents

-- name: run_now
-- A pending job scheduled later or a failed one waiting for its retry becomes due now, its
-- attempts kept. It stays claimable, so its key's limit_ready row stays as it is.
UPDATE queuekit_jobs
SET scheduled_at = {now}
WHERE seq IN (
    SELECT j.seq FROM queuekit_jobs AS j
    WHERE j.status IN ('pending', 'failed') AND j.scheduled_at > {now} {filter}
    ORDER BY j.seq
    LIMIT :limit
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
RETURNING seq, has_dependents

-- name: prune
-- One batch: at most :limit jobs in :statuses that finished :older_than seconds ago or earlier,
-- but not one still holding its unique key for a period not over yet.
DELETE FROM queuekit_jobs
WHERE seq IN (
    SELECT seq FROM queuekit_jobs
    WHERE status IN (SELECT value FROM json_each(:statuses)) AND finished_at <= {now} - :older_than
      AND NOT coalesce(unique_until > {now}
                       AND instr(',' || unique_states || ',', ',' || status || ',') > 0, 0)
    LIMIT :limit
)

-- Flow control (limited.py; the rule is queuekit/backends/flow.py). A limited claim runs in one
-- write transaction and reads the clock once, as :now, so every read and write in it agrees.

-- name: set_limits
INSERT INTO queuekit_limits (queue, limits) VALUES (:queue, :limits)
ON CONFLICT (queue) DO UPDATE SET limits = excluded.limits

-- name: clear_limits
DELETE FROM queuekit_limits WHERE queue = :queue

-- name: all_limits
SELECT queue, limits FROM queuekit_limits ORDER BY queue

-- name: limits_of
-- Those of :queues claimed under limits: with limits, or with a hold in force (a hold applies
-- to a queue without limits too; `limits` is then NULL).
SELECT q.value AS queue, (SELECT limits FROM queuekit_limits WHERE queue = q.value) AS limits
FROM json_each(:queues) AS q
WHERE EXISTS (SELECT 1 FROM queuekit_limits WHERE queue = q.value)
   OR EXISTS (SELECT 1 FROM queuekit_limit_keys WHERE queue = q.value AND held_until > {now})

-- name: hold
-- Key '' holds the whole queue; a hold that ends later stays.
INSERT INTO queuekit_limit_keys (queue, key, held_until) VALUES (:queue, :key, {now} + :seconds)
ON CONFLICT (queue, key) DO UPDATE SET held_until = max(held_until, excluded.held_until)

-- name: limited_queues
-- Those of :queues claimed under limits (see limits_of), with all a limited claim needs of
-- each in one read: the clock (read once for all), whether it is paused, whether any of its
-- keys has claimable jobs (`keyed`), its own state row (NULLs when it has none), its running
-- jobs per limit_key ('' for the keyless ones) as a JSON object, and its first :limit
-- claimable keyless jobs as a JSON array of [id, seq, place in claim order] (they take turns
-- as one key, and no claim takes more than :limit).
WITH clock AS MATERIALIZED (SELECT {now} AS now)
SELECT q.value AS queue, l.limits, clock.now,
       EXISTS (SELECT 1 FROM queuekit_paused WHERE queue = q.value) AS paused,
       EXISTS (SELECT 1 FROM queuekit_limit_ready WHERE queue = q.value) AS keyed,
       s."window", s.started, s.held_until, s.served_at,
       (
           SELECT json_group_object(key, n) FROM (
               SELECT coalesce(limit_key, '') AS key, count(*) AS n FROM queuekit_jobs
               WHERE queue = q.value AND status = 'running'
               GROUP BY limit_key
           )
       ) AS running,
       (
           SELECT json_group_array(json_array(id, seq, place)) FROM (
               SELECT id, seq,
                      row_number() OVER (ORDER BY priority DESC, scheduled_at, seq) AS place
               FROM (
                   SELECT id, seq, priority, scheduled_at
                   FROM queuekit_jobs INDEXED BY queuekit_jobs_keyless_claim
                   WHERE queue = q.value AND limit_key IS NULL
                     AND status IN ('pending', 'failed') AND scheduled_at <= clock.now
                     AND (expires_at IS NULL OR started_at IS NOT NULL OR expires_at > clock.now)
                   ORDER BY priority DESC, scheduled_at, seq
                   LIMIT :limit
               )
           )
       ) AS keyless
FROM json_each(:queues) AS q CROSS JOIN clock
LEFT JOIN queuekit_limits AS l ON l.queue = q.value
LEFT JOIN queuekit_limit_keys AS s ON s.queue = q.value AND s.key = ''
WHERE l.queue IS NOT NULL OR EXISTS (
    SELECT 1 FROM queuekit_limit_keys WHERE queue = q.value AND held_until > clock.now
)

-- name: limited_ready_keys
-- The next :batch keys with claimable jobs after (:served_at, :key), in turn order, with their
-- state rows (NULLs when they have none yet) and, as JSON, the jobs they offer: {offers} is
-- limited_key_jobs or, for ordered limits, limited_key_head.
SELECT r.key, r.served_at AS turn, s."window", s.started, s.held_until, s.served_at,
       {offers} AS offers
FROM queuekit_limit_ready AS r INDEXED BY queuekit_limit_ready_turn
LEFT JOIN queuekit_limit_keys AS s ON s.queue = r.queue AND s.key = r.key
WHERE r.queue = :queue AND (r.served_at, r.key) > (:served_at, :key)
ORDER BY r.served_at, r.key
LIMIT :batch

-- name: limited_key_jobs
-- The key's first :per_key claimable jobs, as a JSON array of [id, seq, place in claim order]
-- (`choose` never takes more from one key).
(
    SELECT json_group_array(json_array(id, seq, place)) FROM (
        SELECT id, seq, row_number() OVER (ORDER BY priority DESC, scheduled_at, seq) AS place
        FROM (
            SELECT id, seq, priority, scheduled_at
            FROM queuekit_jobs INDEXED BY queuekit_jobs_key_claim
            WHERE queue = r.queue AND limit_key = r.key AND limit_key IS NOT NULL
              AND status IN ('pending', 'failed') AND scheduled_at <= :now
              AND (expires_at IS NULL OR started_at IS NOT NULL OR expires_at > :now)
            ORDER BY priority DESC, scheduled_at, seq
            LIMIT :per_key
        )
    )
)

-- name: limited_key_head
-- Ordered limits: the key's first unfinished job (any due time), the only one that may run,
-- as a JSON array [id, seq, whether it is pending or failed and due now].
(
    SELECT json_array(id, seq, status IN ('pending', 'failed') AND scheduled_at <= :now
                               AND (expires_at IS NULL OR started_at IS NOT NULL OR expires_at > :now))
    FROM queuekit_jobs WHERE seq = (
        SELECT min(seq) FROM queuekit_jobs INDEXED BY queuekit_jobs_limit_key
        WHERE queue = r.queue AND limit_key = r.key AND limit_key IS NOT NULL
          AND status IN ('pending', 'failed', 'running')
    )
)

-- name: limited_running
-- The queue's running jobs per limit_key (NULL: the keyless ones), busiest first.
SELECT limit_key, count(*) AS n FROM queuekit_jobs
WHERE queue = :queue AND status = 'running'
GROUP BY limit_key
ORDER BY n DESC, limit_key

-- name: key_states_after
-- Where one batch of the key-state sweep (`forget_keys`) ends: the (queue, key) :limit state
-- rows after (:queue, :key) in key order; no row when the batch reaches the end.
SELECT queue, key FROM queuekit_limit_keys
WHERE (queue, key) > (:queue, :key)
ORDER BY queue, key
LIMIT 1 OFFSET :limit - 1

-- name: forget_keys
-- One batch of the workers' sweep of key states (with `expire`): of the state rows after
-- (:queue, :key), up to (:end_queue, :end_key) unless that is NULL, those of keys with no
-- unfinished job whose hold is over and whose rate window no longer counts
-- (`flow.forgettable`) go, so the table does not keep every key ever seen. Not a queue's own
-- row (''). {limit_ready} needs no sweep: its triggers keep only keys with claimable jobs.
DELETE FROM queuekit_limit_keys
WHERE (queue, key) > (:queue, :key)
  AND (:end_queue IS NULL OR (queue, key) <= (:end_queue, :end_key))
  AND key <> '' AND held_until <= {now}
  AND (started = 0 OR "window" + coalesce((
          SELECT l.limits ->> '$.period' FROM queuekit_limits AS l
          WHERE l.queue = queuekit_limit_keys.queue
      ), 60) <= {now})
  AND NOT EXISTS (
      SELECT 1 FROM queuekit_jobs AS j INDEXED BY queuekit_jobs_limit_key
      WHERE j.queue = queuekit_limit_keys.queue AND j.limit_key = queuekit_limit_keys.key
        AND j.limit_key IS NOT NULL AND j.status IN ('pending', 'failed', 'running')
  )

-- name: held_states
-- The queue's own row, and the keys held at :now.
SELECT key, "window", started, held_until, served_at FROM queuekit_limit_keys
WHERE queue = :queue AND (key = '' OR held_until > :now)

-- name: save_limit_states
-- :states is a JSON array of [key, window, started, held_until, served_at]. A claim never
-- changes a hold (and no hold changes inside its transaction), so held_until, and the index
-- on it, are only written for a new row.
INSERT INTO queuekit_limit_keys (queue, key, "window", started, held_until, served_at)
SELECT :queue, value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4
FROM json_each(:states) WHERE true
ON CONFLICT (queue, key) DO UPDATE
SET "window" = excluded."window", started = excluded.started, served_at = excluded.served_at

-- name: limited_claim
-- Claims the chosen jobs (:seqs, a JSON array) as `claim` does, if they are still claimable.
UPDATE queuekit_jobs
SET status = 'running', attempts = attempts + 1, started_at = :now,
    lease_expires_at = :now + :lease, worker_id = :worker_id, lease_token = :lease_token
WHERE seq IN (SELECT value FROM json_each(:seqs)) AND status IN ('pending', 'failed')
  AND (expires_at IS NULL OR started_at IS NOT NULL OR expires_at > :now)
RETURNING *

-- The worker registry (workers.py; migration 10). A beat keeps the row's start and any drain
-- request, and in the same transaction deletes the rows of the long silent (forget_workers).

-- name: beat_worker
INSERT INTO queuekit_workers (id, info, started_at, last_seen, expires_at, forget_at)
VALUES (:id, :info, {now}, {now}, {now} + :ttl, {now} + 2 * :ttl)
ON CONFLICT (id) DO UPDATE SET
    info = excluded.info, last_seen = excluded.last_seen, expires_at = excluded.expires_at,
    forget_at = excluded.forget_at
RETURNING draining

-- name: forget_workers
DELETE FROM queuekit_workers WHERE forget_at < {now} AND id <> :id

-- name: list_workers
SELECT id, info, started_at, last_seen, draining FROM queuekit_workers
WHERE expires_at > {now} ORDER BY id

-- name: drain_worker
UPDATE queuekit_workers SET draining = 1 WHERE id = :id AND expires_at > {now}

-- name: remove_worker
DELETE FROM queuekit_workers WHERE id = :id

-- Activity by minute (activity.py; migrations 12 and 13), written in one transaction: the
-- minute by SQLite's clock, then each queue's row read, added to and put back (a row this write
-- creates gets the queue's depth, sampled by `activity_depth`), then its old minutes forgotten.

-- name: activity_minute
SELECT CAST({now} / 60 AS INTEGER) * 60

-- name: activity_row
SELECT * FROM queuekit_activity WHERE queue = :queue AND minute = :minute

-- name: activity_depth
-- The queue's ready jobs (claimable, due by now), reading at most :cap entries of the claim
-- index however deep the queue is.
SELECT count(*) FROM (
    SELECT 1 FROM queuekit_jobs INDEXED BY queuekit_jobs_claim
    WHERE queue = :queue AND status IN ('pending', 'failed') AND scheduled_at <= {now}
    LIMIT :cap
)

-- name: put_activity
INSERT OR REPLACE INTO queuekit_activity
    (queue, minute, enqueued, completed, failed, dead, wait, run, depth)
VALUES (:queue, :minute, :enqueued, :completed, :failed, :dead, :wait, :run, :depth)

-- name: forget_activity
DELETE FROM queuekit_activity WHERE queue = :queue AND minute < {now} - :keep

-- name: activity
SELECT * FROM queuekit_activity WHERE queue = :queue AND minute > {now} - :minutes * 60
ORDER BY minute

-- name: take_decided
-- What the triggers of migrations 15 and 16 decided for dependents since the last take, to
-- announce (decided.py orders them, and settles those marked `settle` and the jobs brought back
-- to waiting); taken by the transaction of the write that ended, replayed or deleted their
-- parent.
DELETE FROM queuekit_jobs_decided
RETURNING n, kind, queue, job_id, type, at, attempt, error, settle

-- name: settle
-- Settle what migration 16 left to the write that takes the decisions: the dependents of the
-- jobs of :ended (a JSON array of ids; TRIGGER dependents cancelled by a count) are decided as if
-- each had just ended, and the TRIGGER dependents of those of :returned (brought back to
-- waiting) brought back as by a replay of each. Each only while it is still in that state.
INSERT INTO queuekit_jobs_ended (id, seq, outcome)
SELECT j.id, j.seq, 'cancelled' FROM json_each(:ended) AS s
JOIN queuekit_jobs AS j ON j.id = s.value
WHERE j.status = 'cancelled' AND j.cancelled_by IS NOT NULL

-- name: settle_returned
INSERT INTO queuekit_jobs_returned (id, seq, again)
SELECT j.id, j.seq, 1 FROM json_each(:returned) AS s
JOIN queuekit_jobs AS j ON j.id = s.value
WHERE j.status = 'waiting' AND EXISTS (
    SELECT 1 FROM queuekit_jobs_parents AS e WHERE e.parent_id = j.id AND e.on_failure = 'trigger'
)
