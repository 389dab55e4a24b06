-- queuekit's PostgreSQL statements, one per `-- name:` section, loaded by sqlfiles.py.
--
-- `{jobs}`, `{migrations}`, `{paused}` and `{schema}` are replaced with validated, quoted identifiers when a
-- backend is created; every value is a $n parameter. Time is always the server's `now()` (the
-- start of the statement's transaction, so one statement sees one instant). Wake-ups are
-- `pg_notify($channel, 'w:<queue>')` for new claimable work and `'o:<ids>'` (or a bare 'o'
-- when the ids would not fit) for jobs that reached a terminal state; both are sent inside the
-- statement's transaction, so a rolled-back change notifies nobody.

-- name: migration_table_exists
SELECT to_regclass($1) IS NOT NULL

-- name: schema_exists
SELECT to_regnamespace($1) IS NOT NULL

-- name: migration_lock
SELECT pg_advisory_xact_lock(hashtextextended($1, 0))

-- name: create_schema
CREATE SCHEMA IF NOT EXISTS {schema}

-- name: create_migrations
CREATE TABLE IF NOT EXISTS {migrations} (
    version integer PRIMARY KEY,
    applied_at timestamptz NOT NULL DEFAULT now()
)

-- name: applied_versions
SELECT version FROM {migrations} ORDER BY version

-- name: record_migration
INSERT INTO {migrations} (version) VALUES ($1)

-- name: insert
-- $1..$10: one array per column, one element per job; $11 the channel; $12 the queues to notify
-- (the caller's debounced subset). Conflicts on the live unique key are skipped, and the jobs
-- already holding the requested keys come back too (inserted = false), so every request can be
-- answered in this one round trip. A holder that committed after this statement's snapshot is
-- not seen here; the caller looks those up afterwards.
WITH input AS (
    SELECT *
    FROM unnest(
        $1::text[], $2::text[], $3::text[], $4::text[], $5::smallint[], $6::smallint[],
        $7::float8[], $8::timestamptz[], $9::text[], $10::text[]
    ) WITH ORDINALITY
        AS i(id, queue, type, payload, priority, max_attempts, delay, run_at, unique_key, headers,
             ord)
),
inserted AS (
    INSERT INTO {jobs} AS j (
        id, queue, type, payload, priority, status, max_attempts,
        created_at, scheduled_at, unique_key, headers
    )
    SELECT id, queue, type, payload::json, priority, 'pending', max_attempts,
           now(), coalesce(run_at, now() + delay * interval '1 second'), unique_key, headers::json
    FROM input
    ORDER BY ord
    ON CONFLICT (queue, unique_key)
        WHERE unique_key IS NOT NULL AND status IN ('pending', 'running', 'failed')
        DO NOTHING
    RETURNING j.*
)
SELECT inserted.*, true AS inserted,
       (SELECT count(pg_notify($11, 'w:' || q.queue))
        FROM unnest($12::text[]) AS q(queue)
        WHERE q.queue IN (SELECT queue FROM inserted)) AS notified
FROM inserted
UNION ALL
SELECT j.*, false, 0
FROM {jobs} AS j
JOIN (SELECT DISTINCT queue, unique_key FROM input WHERE unique_key IS NOT NULL) AS k
    ON j.queue = k.queue AND j.unique_key = k.unique_key
WHERE j.status IN ('pending', 'running', 'failed')

-- name: insert_one
-- One job without a unique key, the common enqueue: the same row as `insert` makes, from plain
-- parameters ($1 id .. $9 headers as in `insert`), with no conflict to resolve. $10 the
-- channel; $11 whether to send the queue's wake-up.
WITH inserted AS (
    INSERT INTO {jobs} (
        id, queue, type, payload, priority, status, max_attempts,
        created_at, scheduled_at, headers
    )
    VALUES (
        $1, $2, $3, $4::json, $5, 'pending', $6,
        now(), coalesce($8::timestamptz, now() + $7::float8 * interval '1 second'), $9::json
    )
    RETURNING *
)
SELECT inserted.*,
       CASE WHEN $11::boolean THEN (SELECT count(pg_notify($10::text, 'w:' || $2))) END AS notified
FROM inserted

-- name: connection_identity
-- Where a caller's connection (`connection=`) points: its database, and whether it sees this
-- backend's jobs table. No parameters, so it runs unchanged through any driver. `json_probe`
-- comes back as the text 'null' unless the connection decodes json (SQLAlchemy's does).
SELECT current_database() AS database, to_regclass('{jobs}') IS NOT NULL AS has_jobs,
       'null'::json AS json_probe

-- name: live_unique
SELECT j.*
FROM {jobs} AS j
JOIN unnest($1::text[], $2::text[]) AS k(queue, unique_key)
    ON j.queue = k.queue AND j.unique_key = k.unique_key
WHERE j.status IN ('pending', 'running', 'failed')

-- name: claim
-- $1 queues, $2 free slots per queue, $3 limit, $4 lease (s), $5 worker id, $6 lease token.
--
-- `levels` walks the distinct priorities holding claimable jobs in each queue with a loose
-- index scan (one descent of the claim index per priority). `locked` then reads each
-- (queue, priority) as a tight range of the claim index, `scheduled_at <= now()`, which stops
-- at the first future job: a million delayed jobs cost nothing, where one scan in
-- (priority, scheduled_at) order would step over every delayed job of a priority each time
-- fewer than `limit` jobs are ready. Rows are locked as they are read (SKIP LOCKED, so
-- concurrent claimers take different jobs), and the CTE is MATERIALIZED so it runs once and
-- the UPDATE can never touch more rows than were chosen. `chosen` keeps at most `slots` per
-- queue and `limit` in all, in claim order; rows locked but not chosen are released when the
-- statement ends. The UPDATE finds the chosen rows by primary key from an array, so no join
-- plan (and no stale statistics) can make it touch anything else.
--
-- `j.attempts >= 0` is always true (a CHECK constraint says so); it is there to make each
-- descent a plain index scan, which reads the row and marks the dead index entries it passes
-- as killed. An index-only scan marks nothing, so after a burst of claims every walk would
-- re-read each dead entry at the head of the index until vacuum ran (measured: 3,000 heap
-- fetches per claim after 200 claims).
WITH RECURSIVE lanes AS (
    SELECT l.queue, l.slots
    FROM unnest($1::text[], $2::int[]) AS l(queue, slots)
    WHERE l.slots > 0
      AND NOT EXISTS (SELECT 1 FROM {paused} AS p WHERE p.queue = l.queue)
),
levels AS (
    SELECT l.queue, l.slots,
           (SELECT j.priority FROM {jobs} AS j
            WHERE j.queue = l.queue AND j.status IN ('pending', 'failed') AND j.attempts >= 0
            ORDER BY j.priority DESC LIMIT 1) AS priority
    FROM lanes AS l
    UNION ALL
    SELECT v.queue, v.slots,
           (SELECT j.priority FROM {jobs} AS j
            WHERE j.queue = v.queue AND j.status IN ('pending', 'failed') AND j.attempts >= 0
              AND j.priority < v.priority
            ORDER BY j.priority DESC LIMIT 1)
    FROM levels AS v
    WHERE v.priority IS NOT NULL
),
locked AS MATERIALIZED (
    SELECT c.seq, c.queue, c.priority, c.scheduled_at, v.slots
    FROM levels AS v
    CROSS JOIN LATERAL (
        SELECT j.seq, j.queue, j.priority, j.scheduled_at
        FROM {jobs} AS j
        WHERE j.queue = v.queue AND j.priority = v.priority
          AND j.status IN ('pending', 'failed') AND j.scheduled_at <= now()
        ORDER BY j.scheduled_at, j.seq
        LIMIT least(v.slots, $3)
        FOR UPDATE SKIP LOCKED
    ) AS c
    WHERE v.priority IS NOT NULL
),
chosen AS MATERIALIZED (
    SELECT r.seq
    FROM (
        SELECT seq, priority, scheduled_at, slots,
               row_number() OVER (PARTITION BY queue ORDER BY priority DESC, scheduled_at, seq)
                   AS rank
        FROM locked
    ) AS r
    WHERE r.rank <= r.slots
    ORDER BY r.priority DESC, r.scheduled_at, r.seq
    LIMIT $3
),
claimed AS (
    UPDATE {jobs} AS j
    SET status = 'running',
        attempts = j.attempts + 1,
        started_at = now(),
        lease_expires_at = now() + $4 * interval '1 second',
        worker_id = $5,
        lease_token = $6
    WHERE j.seq = ANY(ARRAY(SELECT seq FROM chosen))
    RETURNING j.*
)
SELECT * FROM claimed ORDER BY priority DESC, scheduled_at, seq

-- name: heartbeat
-- $1 job ids, $2 their lease tokens, $3 lease (s); returns the (id, token) pairs still held.
WITH held AS (
    UPDATE {jobs} AS j
    SET lease_expires_at = now() + $3 * interval '1 second'
    FROM unnest($1::text[], $2::text[]) AS a(id, lease_token)
    WHERE j.id = a.id AND j.lease_token = a.lease_token AND j.status = 'running'
    RETURNING j.id, j.lease_token
)
SELECT id, lease_token FROM held

-- name: finish
-- A batch of completions, failures and snoozes from one process, as parallel arrays:
-- $1 job ids, $2 lease tokens, $3 kinds ('complete', 'fail' or 'snooze'), $4 results (JSON
-- text), $5 errors, $6 seconds (fail: retry in, NULL for dead, as the worker decided; snooze:
-- delay), $7 the channel.
-- Each row changes only if the named claim still holds the job (fencing); the returned rows
-- are the ones that changed, with their new status. One wake-up per queue that got work back,
-- and one outcome notification for the batch.
WITH input AS (
    SELECT *
    FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::float8[])
        AS i(id, lease_token, kind, result, error, seconds)
),
updated AS (
    UPDATE {jobs} AS j
    SET status = CASE
            WHEN i.kind = 'complete' THEN 'completed'
            WHEN i.kind = 'snooze' THEN 'pending'
            WHEN i.seconds IS NULL THEN 'dead'
            ELSE 'failed'
        END,
        attempts = CASE WHEN i.kind = 'snooze' THEN j.attempts - 1 ELSE j.attempts END,
        scheduled_at = coalesce(now() + i.seconds * interval '1 second', j.scheduled_at),
        finished_at = CASE
            WHEN i.kind = 'complete' OR (i.kind = 'fail' AND i.seconds IS NULL) THEN now()
        END,
        result = CASE WHEN i.kind = 'complete' THEN i.result::json ELSE j.result END,
        last_error = CASE WHEN i.kind = 'fail' THEN i.error ELSE j.last_error END,
        lease_expires_at = NULL
    FROM input AS i
    WHERE j.id = i.id AND j.lease_token = i.lease_token AND j.status = 'running'
    RETURNING i.id, i.lease_token, j.status, j.queue
)
SELECT u.id, u.lease_token, u.status, u.queue,
       (SELECT count(pg_notify($7, 'w:' || w.queue))
        FROM (SELECT DISTINCT queue FROM updated WHERE status IN ('pending', 'failed')) AS w)
     + (SELECT count(pg_notify($7, o.payload))
        FROM (SELECT CASE WHEN sum(octet_length(id) + 1) < 7000
                          THEN 'o:' || string_agg(id, ' ') ELSE 'o' END AS payload
              FROM updated WHERE status IN ('completed', 'dead')
              HAVING count(*) > 0) AS o) AS notified
FROM updated AS u

-- name: complete_in_transaction
-- One completion on the caller's connection, inside their transaction: $1 job id, $2 lease
-- token, $3 result (JSON text), $4 the channel. Fenced as `finish` is; no row when the attempt
-- no longer holds the job. The outcome notification is delivered only if the caller commits.
WITH completed AS (
    UPDATE {jobs}
    SET status = 'completed', finished_at = now(), result = $3::text::json,
        lease_expires_at = NULL
    WHERE id = $1 AND lease_token = $2 AND status = 'running'
    RETURNING id
)
SELECT id, pg_notify($4::text, 'o:' || id) IS NULL AS notified FROM completed

-- name: rescue
-- The rule of Backend.rescue (backend.py): failed and claimable now while attempts are left.
WITH rescued AS (
    UPDATE {jobs}
    SET status = CASE WHEN attempts >= max_attempts THEN 'dead' ELSE 'failed' END,
        finished_at = CASE WHEN attempts >= max_attempts THEN now() END,
        scheduled_at = now(),
        last_error = 'lease expired',
        lease_expires_at = NULL
    WHERE status = 'running' AND lease_expires_at <= now()
    RETURNING id, queue, status
)
SELECT r.id, r.queue, r.status,
       (SELECT count(pg_notify($1, 'w:' || w.queue))
        FROM (SELECT DISTINCT queue FROM rescued WHERE status = 'failed') AS w)
     + (SELECT count(pg_notify($1, o.payload))
        FROM (SELECT CASE WHEN sum(octet_length(id) + 1) < 7000
                          THEN 'o:' || string_agg(id, ' ') ELSE 'o' END AS payload
              FROM rescued WHERE status = 'dead'
              HAVING count(*) > 0) AS o) AS notified
FROM rescued AS r

-- name: next_due
-- Seconds from now until the earliest claimable job in queues $1 is due (<= 0: one is due
-- now), or NULL when there is none; the same loose index scan as the claim (and the same
-- `attempts >= 0`, for the same reason).
WITH RECURSIVE levels AS (
    SELECT l.queue,
           (SELECT j.priority FROM {jobs} AS j
            WHERE j.queue = l.queue AND j.status IN ('pending', 'failed') AND j.attempts >= 0
            ORDER BY j.priority DESC LIMIT 1) AS priority
    FROM unnest($1::text[]) AS l(queue)
    WHERE NOT EXISTS (SELECT 1 FROM {paused} AS p WHERE p.queue = l.queue)
    UNION ALL
    SELECT v.queue,
           (SELECT j.priority FROM {jobs} AS j
            WHERE j.queue = v.queue AND j.status IN ('pending', 'failed') AND j.attempts >= 0
              AND j.priority < v.priority
            ORDER BY j.priority DESC LIMIT 1)
    FROM levels AS v
    WHERE v.priority IS NOT NULL
)
SELECT extract(epoch FROM min(f.scheduled_at) - now())::float8 AS seconds
FROM levels AS v
CROSS JOIN LATERAL (
    SELECT j.scheduled_at
    FROM {jobs} AS j
    WHERE j.queue = v.queue AND j.priority = v.priority AND j.status IN ('pending', 'failed')
      AND j.attempts >= 0
    ORDER BY j.scheduled_at
    LIMIT 1
) AS f
WHERE v.priority IS NOT NULL

-- name: notify
SELECT pg_notify($1, $2)

-- name: get
SELECT * FROM {jobs} WHERE id = $1

-- name: list_queues
-- A loose index scan: one descent of the list index per distinct queue, not a full scan;
-- paused queues are listed too, even without jobs.
WITH RECURSIVE q AS (
    (SELECT queue FROM {jobs} ORDER BY queue LIMIT 1)
    UNION ALL
    SELECT (SELECT j.queue FROM {jobs} AS j WHERE j.queue > q.queue ORDER BY j.queue LIMIT 1)
    FROM q
    WHERE q.queue IS NOT NULL
)
SELECT queue FROM q WHERE queue IS NOT NULL
UNION
SELECT queue FROM {paused}
ORDER BY queue

-- name: pause
INSERT INTO {paused} (queue) VALUES ($1) ON CONFLICT DO NOTHING

-- name: resume
-- $2 the channel: idle workers on every host wake and claim at once.
WITH resumed AS (
    DELETE FROM {paused} WHERE queue = $1 RETURNING queue
)
SELECT count(pg_notify($2, 'w:' || queue)) AS notified FROM resumed

-- name: paused_queues
SELECT queue FROM {paused} ORDER BY queue

-- name: counts
-- Per status of queue $1; $2 is the success window (s).
SELECT status,
       count(*) AS n,
       count(*) FILTER (WHERE scheduled_at > now()) AS scheduled,
       extract(epoch FROM now() - min(scheduled_at) FILTER (WHERE scheduled_at <= now()))::float8
           AS ready_age,
       count(*) FILTER (WHERE finished_at > now() - $2 * interval '1 second') AS recent,
       count(*) FILTER (WHERE lease_expires_at <= now()) AS expired
FROM {jobs}
WHERE queue = $1
GROUP BY status

-- Cancel, replay and delete run on the rows a `{chosen}` statement picks, `chosen_one` or
-- `chosen_batch` (filled in when the backend is created); `{channel}` is the parameter after
-- those the chosen statement takes. Each returns one row saying how many rows were chosen and
-- the last chosen seq, joined to each row it changed (NULL columns when none), so a bulk
-- operation knows where to go on even when a concurrent change left some chosen row alone.

-- name: chosen_one
-- The job with id $1.
SELECT seq, queue, unique_key FROM {jobs} WHERE id = $1

-- name: chosen_batch
-- One batch of a bulk operation: up to $5 jobs in status $1, of queue $2 and type $3 when not
-- NULL, after seq $4, oldest first. Each queue (every queue, found by a loose index scan, when
-- $2 is NULL) is read as a tight range of the list index (queue, status, seq), so a batch reads
-- about one batch of entries per queue. Rows are locked as read (SKIP LOCKED: a row another
-- statement is changing is left for it); rows locked but not chosen are released when the
-- statement ends.
WITH RECURSIVE queues AS (
    (SELECT queue FROM {jobs} WHERE $2::text IS NULL ORDER BY queue LIMIT 1)
    UNION ALL
    SELECT (SELECT j.queue FROM {jobs} AS j WHERE j.queue > q.queue ORDER BY j.queue LIMIT 1)
    FROM queues AS q
    WHERE q.queue IS NOT NULL
),
lanes AS (
    SELECT $2::text AS queue WHERE $2::text IS NOT NULL
    UNION ALL
    SELECT queue FROM queues WHERE queue IS NOT NULL
)
SELECT c.seq, c.queue, c.unique_key
FROM lanes AS l
CROSS JOIN LATERAL (
    SELECT j.seq, j.queue, j.unique_key
    FROM {jobs} AS j
    WHERE j.queue = l.queue AND j.status = $1::text AND j.seq > $4::bigint
      AND ($3::text IS NULL OR j.type = $3::text)
    ORDER BY j.seq
    LIMIT $5::int
    FOR UPDATE SKIP LOCKED
) AS c
ORDER BY c.seq
LIMIT $5::int

-- name: cancel
WITH chosen AS MATERIALIZED ({chosen}),
cancelled AS (
    UPDATE {jobs}
    SET status = 'cancelled', finished_at = now(), lease_expires_at = NULL
    WHERE seq = ANY(ARRAY(SELECT seq FROM chosen)) AND status IN ('pending', 'failed', 'running')
    RETURNING *
)
SELECT s.chosen, s.last_chosen, c.*
FROM (
    SELECT count(*) AS chosen, max(seq) AS last_chosen,
           (SELECT count(pg_notify({channel}, o.payload))
            FROM (SELECT CASE WHEN sum(octet_length(id) + 1) < 7000
                              THEN 'o:' || string_agg(id, ' ') ELSE 'o' END AS payload
                  FROM cancelled
                  HAVING count(*) > 0) AS o) AS notified
    FROM chosen
) AS s
LEFT JOIN cancelled AS c ON true

-- name: replay
-- A newer live job holding the same unique key blocks the replay, and of chosen jobs sharing a
-- key only the oldest is replayed; a concurrent holder that the NOT EXISTS cannot see yet is
-- caught by the unique index (the caller runs the statement again).
WITH chosen AS MATERIALIZED ({chosen}),
replayed AS (
    UPDATE {jobs} AS j
    SET status = 'pending', attempts = 0, scheduled_at = now(), started_at = NULL,
        finished_at = NULL, worker_id = NULL, result = NULL
    WHERE j.seq = ANY(ARRAY(SELECT seq FROM chosen)) AND j.status IN ('dead', 'cancelled')
      AND NOT EXISTS (
          SELECT 1 FROM {jobs} AS live
          WHERE live.queue = j.queue AND live.unique_key = j.unique_key
            AND live.status IN ('pending', 'running', 'failed')
      )
      AND NOT EXISTS (
          SELECT 1 FROM chosen AS twin
          WHERE twin.queue = j.queue AND twin.unique_key = j.unique_key AND twin.seq < j.seq
      )
    RETURNING j.*
)
SELECT s.chosen, s.last_chosen, r.*
FROM (
    SELECT count(*) AS chosen, max(seq) AS last_chosen,
           (SELECT count(pg_notify({channel}, 'w:' || q.queue))
            FROM (SELECT DISTINCT queue FROM replayed) AS q) AS notified
    FROM chosen
) AS s
LEFT JOIN replayed AS r ON true

-- name: delete
WITH chosen AS MATERIALIZED ({chosen}),
deleted AS (
    DELETE FROM {jobs}
    WHERE seq = ANY(ARRAY(SELECT seq FROM chosen)) AND status <> 'running'
    RETURNING id
)
SELECT s.chosen, s.last_chosen, d.id
FROM (SELECT count(*) AS chosen, max(seq) AS last_chosen FROM chosen) AS s
LEFT JOIN deleted AS d ON true

-- name: prune_cutoff
SELECT now() - $1 * interval '1 second'

-- name: prune_keys
-- Pruning goes in bounded batches of two statements: the keys of one batch of finished jobs of
-- status $1 older than the cutoff $2, oldest first, then a delete by those keys that checks
-- every condition again on each row. The delete also bounds the batch by a range of the index
-- the keys came from, so whichever index the planner picks, it reads about one batch of
-- entries, even with stale statistics. (One statement joining a LIMIT subquery to the table was
-- measured taking minutes for 10,000 rows when statistics were stale: the planner chose a
-- nested loop that rescanned the subquery for every row.)
SELECT seq, finished_at FROM {jobs}
WHERE status = $1 AND finished_at IS NOT NULL AND finished_at <= $2
ORDER BY finished_at
LIMIT $3

-- name: prune
DELETE FROM {jobs}
WHERE seq = ANY($3::bigint[]) AND status = $1 AND finished_at <= $2
  AND finished_at BETWEEN $4 AND $5
