-- queuekit's PostgreSQL statements, one per `-- name:` section, loaded by sqlfiles.py.
--
-- `{jobs}`, `{migrations}`, `{paused}`, `{limits}`, `{limit_keys}`, `{parents}` and `{schema}`
-- are replaced with validated, quoted identifiers when a backend is created; every value is a $n
-- parameter. Time is always the server's `now()` (the start of the statement's transaction, so
-- one statement sees one instant; the limited claim alone reads the clock after taking its
-- lock, see migration 14). Wake-ups are
-- `pg_notify($channel, 'w:<queue>')` for new claimable work and `'o:<ids>'` (or a bare 'o'
-- when the ids would not fit) for jobs that reached a terminal state, and `'c:<ids>'` (or 'c')
-- for cancelled jobs that may have been running; all are sent inside the statement's
-- transaction, so a rolled-back change notifies nobody (the dependencies' triggers, migration
-- 15, send those of the dependents a statement releases or cancels, in it too).

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

-- name: add_ready_keys
-- Not a statement: the body of the CTE by which `insert`, `insert_one` and `replay` give each
-- (queue, key) of their new rows (the CTE `{rows}`, written `{add_ready_keys:<cte>}` there) its
-- row in {limit_ready} (see migration 7); keyless jobs have the key ''. Each row is added under
-- the key's shared advisory lock, which a claim removing the row must take exclusively. When
-- it is there already (the usual case), that costs one index lookup and writes nothing.
INSERT INTO {limit_ready} (queue, key, served_at)
SELECT k.queue, k.limit_key, coalesce(s.served_at, 0)
FROM (SELECT DISTINCT queue, coalesce(limit_key, '') AS limit_key FROM {rows}) AS k
CROSS JOIN LATERAL (
    SELECT pg_advisory_xact_lock_shared(hashtextextended('{jobs}/' || k.queue || '/' || k.limit_key, 0))
) AS l
LEFT JOIN {limit_keys} AS s ON s.queue = k.queue AND s.key = k.limit_key
ON CONFLICT (queue, key) DO NOTHING

-- name: decide_dependents
-- Not a statement: the body of the CTE by which `finish` and `cancel` have the jobs they ended
-- (the CTE `{rows}`, written `{decide_dependents:<cte>}` there) decide their dependents in one
-- call of `{table}_parents_end`, not one call each from the trigger, which stands aside while
-- `queuekit.deciding` is on: each of them sets it for its own transaction. It runs only if the
-- statement's SELECT names a column of it; PostgreSQL leaves out a CTE nobody reads.
SELECT {schema}."{table}_parents_end"(array_agg(id), array_agg(status::text))
FROM {rows}
WHERE has_dependents AND status IN ('completed', 'dead', 'cancelled')
HAVING count(*) > 0

-- name: insert
-- Jobs without unique or debounce keys (a call with one goes through `insert_keyed`). Returns
-- only what the server decided of each (`job_from_new`): sending every column back, and
-- reading it, took half the time of a bulk enqueue.
-- $1..$14: one array per column, one element per job ($11 and $12 the expiries: absolute, or
-- seconds from now); $21 the channel; $22 the queues to notify (the caller's debounced subset).
-- Dependencies (inserts.py; NULL for a call without any): $15 how many parents each job has (a
-- job with some is stored `waiting`, all of them counted unfinished: the caller then decides
-- those that finished already, see `parents_end`); $16 whether a later job of the call waits
-- for it; $17..$20 the edges to parents stored before the call (child ids, positions, parent
-- ids, on_failure); per job, each list joined by '/' (which no id holds): $23 its parents'
-- ids and $24 their on_failure (each joined by spaces), $25 its dependents in the call (its
-- `dependents`, migration 19); $26 the call's id.
WITH input AS (
    SELECT *
    FROM unnest(
        $1::text[], $2::text[], $3::text[], $4::text[], $5::smallint[], $6::smallint[],
        $7::float8[], $8::timestamptz[], $9::text[], $10::text[], $11::timestamptz[],
        $12::float8[], $13::text[], $14::text[], $15::int[], $16::boolean[],
        string_to_array($23::text, '/'), string_to_array($24::text, '/'),
        string_to_array($25::text, '/')
    ) WITH ORDINALITY
        AS i(id, queue, type, payload, priority, max_attempts, delay, run_at, headers,
             limit_key, expires_at, expires_in, workflow_id, batch_id, parents, has_dependents,
             parent_ids, parent_policies, dependents, ord)
),
inserted AS (
    INSERT INTO {jobs} AS j (
        id, queue, type, payload, priority, status, max_attempts,
        created_at, scheduled_at, headers, limit_key, expires_at,
        workflow_id, batch_id, open_parents, has_parents, has_dependents,
        parent_ids, parent_policies, dependents, call_id
    )
    SELECT id, queue, type, payload::json, priority,
           CASE WHEN parents > 0 THEN 'waiting' ELSE 'pending' END, max_attempts,
           now(), coalesce(run_at, now() + delay * interval '1 second'), headers::json,
           limit_key, coalesce(expires_at, now() + expires_in * interval '1 second'),
           workflow_id, batch_id, coalesce(parents, 0), coalesce(parents > 0, false),
           coalesce(has_dependents, false),
           nullif(parent_ids, ''), nullif(parent_policies, ''), nullif(dependents, ''),
           CASE WHEN parents > 0 OR has_dependents THEN $26::text END
    FROM input
    ORDER BY ord
    RETURNING j.id, j.queue, j.limit_key, j.status, j.created_at, j.scheduled_at, j.expires_at
),
ready AS ({add_ready_keys:inserted}),
edges AS ({insert_edges:inserted})
SELECT inserted.id, inserted.created_at, inserted.scheduled_at, inserted.expires_at,
       (SELECT count(pg_notify($21, 'w:' || q.queue))
        FROM unnest($22::text[]) AS q(queue)
        WHERE q.queue IN (SELECT queue FROM inserted WHERE status = 'pending')) AS notified
FROM inserted

-- name: insert_keyed
-- A call in which a job has a unique or a debounce key: $1..$22 as in `insert` (every edge in
-- $17..$20: a job of the call answered by a holder is not stored, and no parent may keep it
-- in its `dependents`; `set_parents` writes the parents of those stored), and $23 the unique
-- keys, $24 their states (comma-joined), $25 their periods (s), $26 whether to replace the
-- holder, $27 the debounce keys, $28 their caps (s). The jobs go in one by one, each
-- answered by the holder of its key where there is one (migration 16's `enqueue`): a row per
-- job, in order, `inserted` saying whether it is the job stored. A queue gets its wake-up when
-- a job of it was stored or rewritten pending (a rewrite may have made it due).
WITH stored AS MATERIALIZED (
    SELECT s.o_ord AS ord, s.o_inserted AS inserted, s.o_changed AS changed, (s.o_job).*
    FROM {schema}."{table}_enqueue"(
        $1::text[], $2::text[], $3::text[], $4::text[], $5::smallint[], $6::smallint[],
        $7::float8[], $8::timestamptz[], $9::text[], $10::text[], $11::timestamptz[],
        $12::float8[], $13::text[], $14::text[], $15::int[], $16::boolean[], $23::text[],
        $24::text[], $25::float8[], $26::boolean[], $27::text[], $28::float8[]
    ) AS s
),
inserted AS (SELECT * FROM stored WHERE inserted),
ready AS ({add_ready_keys:inserted}),
edges AS ({insert_edges:inserted} WHERE e.child_id IN (SELECT id FROM inserted WHERE has_parents))
SELECT stored.*,
       (SELECT count(pg_notify($21, 'w:' || q.queue))
        FROM unnest($22::text[]) AS q(queue)
        WHERE q.queue IN (SELECT queue FROM stored WHERE changed AND status = 'pending'))
           AS notified
FROM stored
ORDER BY ord

-- name: insert_edges
-- Not a statement: the body of the CTE by which `insert` and `insert_keyed` store the edges
-- kept as rows ($17..$20, each a list joined by spaces; see migration 19), written
-- `{insert_edges:<cte>}` like the other fragments, though it reads no CTE: every job of an
-- `insert` is stored (or none is), and `insert_keyed` adds a `WHERE` that keeps the edges of
-- the children it stored (not of those a holder answered).
INSERT INTO {parents} (child_id, position, parent_id, on_failure)
SELECT e.child_id, e.position, e.parent_id, e.on_failure
FROM unnest(string_to_array($17::text, ' '), string_to_array($18::text, ' ')::int[],
            string_to_array($19::text, ' '), string_to_array($20::text, ' '))
    AS e(child_id, position, parent_id, on_failure)

-- name: insert_one
-- One job without a key, the common enqueue: the same row as `insert` makes, from plain
-- parameters ($1 id .. $9 headers as in `insert`, $12 limit_key, $13 and $14 the expiry,
-- $15 the workflow id, $16 the batch id), with no parents. $10 the channel; $11 whether to
-- send the queue's wake-up. Returns what the server decided, as `insert` does.
WITH inserted AS (
    INSERT INTO {jobs} (
        id, queue, type, payload, priority, status, max_attempts,
        created_at, scheduled_at, headers, limit_key, expires_at, workflow_id, batch_id
    )
    VALUES (
        $1, $2, $3, $4::json, $5, 'pending', $6,
        now(), coalesce($8::timestamptz, now() + $7::float8 * interval '1 second'), $9::json,
        $12::text, coalesce($13::timestamptz, now() + $14::float8 * interval '1 second'),
        $15::text, $16::text
    )
    RETURNING queue, limit_key, created_at, scheduled_at, expires_at
),
ready AS ({add_ready_keys:inserted})
SELECT inserted.created_at, inserted.scheduled_at, inserted.expires_at,
       CASE WHEN $11::boolean THEN (SELECT count(pg_notify($10::text, 'w:' || $2))) END AS notified
FROM inserted

-- name: transaction_time
-- The start of the transaction, which every `now()` in it reads (copies.py).
SELECT now()

-- name: copied
-- After a COPY of plain jobs (copies.py), in its transaction: the ready keys of their queues
-- ($1) and limit keys ($2, NULL for none: one pair per distinct pair), and the wake-ups of
-- $4 (the caller's debounced subset of their queues, all pending) on the channel $3.
WITH copied AS (SELECT * FROM unnest($1::text[], $2::text[]) AS c(queue, limit_key)),
ready AS ({add_ready_keys:copied})
SELECT count(pg_notify($3, 'w:' || q.queue)) FROM unnest($4::text[]) AS q(queue)

-- name: connection_identity
-- Where a caller's connection (`connection=`) points: its database, and whether it sees this
-- backend's jobs table. No parameters, so it runs unchanged through any driver. `json_probe`
-- comes back as the text 'null' unless the connection decodes json (SQLAlchemy's does).
SELECT current_database() AS database, to_regclass('{jobs}') IS NOT NULL AS has_jobs,
       'null'::json AS json_probe

-- name: set_parents
-- After `insert_keyed`: the parents of the jobs $1 it stored, on their rows (`insert` writes
-- them itself): per job, $2 their ids and $3 their on_failure, each joined by spaces.
UPDATE {jobs} AS j
SET parent_ids = p.ids, parent_policies = p.policies
FROM unnest($1::text[], $2::text[], $3::text[]) AS p(id, ids, policies)
WHERE j.id = ANY($1::text[]) AND j.id = p.id

-- name: lock_parents
-- The stored jobs among $1 that new jobs of an enqueue wait for, each locked (in id order, so
-- two enqueues never wait for each other in a circle) until the enqueue's transaction ends,
-- and marked as having dependents: a parent ending meanwhile is either seen here ended, or
-- ends after this transaction, its trigger finding the new edges. Returns each one's status.
WITH locked AS MATERIALIZED (
    SELECT seq, id, status, has_dependents FROM {jobs}
    WHERE id = ANY($1::text[])
    ORDER BY id
    FOR NO KEY UPDATE
),
marked AS (
    UPDATE {jobs} SET has_dependents = true
    WHERE seq = ANY(ARRAY(SELECT seq FROM locked WHERE NOT has_dependents))
)
SELECT id, status FROM locked

-- name: parents_end
-- Jobs $1 ended ($2 how: completed, dead or cancelled) before the jobs of an enqueue that wait
-- for them were stored: decide those now, as their end would have (migration 15).
SELECT {schema}."{table}_parents_end"($1::text[], $2::text[])

-- name: claim
-- $1 queues, $2 free slots per queue, $3 limit, $4 lease (s), $5 worker id, $6 lease token.
--
-- Paused queues are skipped, and so are queues with limits or a key held now: those are
-- claimed under their limits and holds, one call per queue (`claim_limited`).
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
--
-- A job that never started and whose `expires_at` has passed is stepped over (a filter on
-- the rows read anyway: no other index, nothing for jobs without an expiry); `expire`
-- cancels it.
WITH RECURSIVE lanes AS (
    SELECT l.queue, l.slots
    FROM unnest($1::text[], $2::int[]) AS l(queue, slots)
    WHERE l.slots > 0
      AND NOT EXISTS (SELECT 1 FROM {paused} AS p WHERE p.queue = l.queue)
      AND NOT EXISTS (
          SELECT 1 FROM {limits} AS m
          WHERE m.queue = l.queue
            AND (m.limits IS NOT NULL OR m.held_until > extract(epoch FROM now()))
      )
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
          AND (j.expires_at IS NULL OR j.started_at IS NOT NULL OR j.expires_at > now())
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
-- What each attempt reported since its last heartbeat, NULL where unchanged: $4 progress
-- (with it, the note $5 is written too, NULL clearing it), $6 partial output (JSON text).
-- Fenced like the lease: a lost attempt's reports match no row. Found by id, as `finish` says.
WITH held AS (
    UPDATE {jobs} AS j
    SET lease_expires_at = now() + $3 * interval '1 second',
        progress = CASE WHEN a.progress IS NULL THEN j.progress ELSE a.progress END,
        progress_note = CASE WHEN a.progress IS NULL THEN j.progress_note ELSE a.note END,
        output = coalesce(a.output::json, j.output)
    FROM unnest($1::text[], $2::text[], $4::float8[], $5::text[], $6::text[])
        AS a(id, lease_token, progress, note, output)
    WHERE j.id = a.id AND j.lease_token = a.lease_token AND j.lease_expires_at IS NOT NULL
    RETURNING j.id, j.lease_token
)
SELECT id, lease_token FROM held

-- name: ended_attempt
-- Not a statement: `{ended_attempt(<outcome>; <error>)}` in the statements that end a running
-- job's attempt (finish, complete_in_transaction, rescue, cancel) is the job's new `history`:
-- its latest {history_limit} attempts, this one added as ending now, its error cut to
-- {history_error_chars} characters (history.py fills in the bounds and reads the records).
-- Names are the job's columns as they were before the statement. A history is read whole
-- only when it is full (the jsonpath keeps its last {history_limit} - 1); otherwise the record
-- is appended to it (NULL until the first attempt ends).
(CASE WHEN jsonb_array_length(coalesce(history, '[]')) < {history_limit}
      THEN coalesce(history, '[]')
      ELSE jsonb_path_query_array(history, '$[last - {history_limit} + 2 to last]')
 END
 || jsonb_build_object(
     'attempt', attempts, 'worker', worker_id, 'started', extract(epoch FROM started_at),
     'finished', extract(epoch FROM now()), 'outcome', ({outcome})::text,
     'error', left(({error})::text, {history_error_chars})))

-- name: finish
-- A batch of completions, failures and snoozes from one process, as parallel arrays:
-- $1 job ids, $2 lease tokens, $3 kinds ('complete', 'fail' or 'snooze'), $4 results (JSON
-- text), $5 errors, $6 seconds (fail: retry in, NULL for dead, as the worker decided; snooze:
-- delay), $7 the channel.
-- Each row changes only if the named claim still holds the job (fencing: its token, on a job
-- still running); the returned rows are the ones that changed, with their new status.
-- "Still running" is said as "has a lease", which a job has exactly while it runs
-- (`lease_iff_running`): said as `status = 'running'`, it let the planner read every running
-- job from the lease index, and the dead versions of those that ran since the last vacuum,
-- to find a batch of a few. Said so, the batch is found by id. One wake-up per queue that got
-- work back or, having limits, a slot (any of its jobs stopped running), and one outcome
-- notification for the batch.
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
        lease_expires_at = NULL,
        history = {ended_attempt(
            CASE
                WHEN i.kind = 'complete' THEN 'completed'
                WHEN i.kind = 'snooze' THEN 'snoozed'
                WHEN i.seconds IS NULL THEN 'dead'
                ELSE 'failed'
            END;
            i.error)}
    FROM input AS i
    WHERE j.id = i.id AND j.lease_token = i.lease_token AND j.lease_expires_at IS NOT NULL
      -- The jobs of the batch that end here decide their dependents in one call (`decided`,
      -- see `decide_dependents`). It is set for this statement's transaction alone: a batch
      -- is written on its own, never inside a caller's transaction.
      AND (SELECT set_config('queuekit.deciding', 'on', true)) = 'on'
    RETURNING i.id, i.lease_token, j.status, j.queue, j.has_dependents
),
decided AS ({decide_dependents:updated})
SELECT u.id, u.lease_token, u.status, u.queue,
       (SELECT count(*) FROM decided) AS decided,
       (SELECT count(pg_notify($7, 'w:' || w.queue))
        FROM (SELECT DISTINCT queue FROM updated AS d
              WHERE d.status IN ('pending', 'failed')
                 OR EXISTS (
                     SELECT 1 FROM {limits} AS m WHERE m.queue = d.queue AND m.limits IS NOT NULL
                 )) AS w)
     + (SELECT count(pg_notify($7, o.payload))
        FROM (SELECT CASE WHEN sum(octet_length(id) + 1) < 7000
                          THEN 'o:' || string_agg(id, ' ') ELSE 'o' END AS payload
              FROM updated WHERE status IN ('completed', 'dead')
              HAVING count(*) > 0) AS o) AS notified
FROM updated AS u

-- name: complete_in_transaction
-- One completion on the caller's connection, inside their transaction: $1 job id, $2 lease
-- token, $3 result (JSON text), $4 the channel. Fenced, and found, as `finish` is; no row when
-- the attempt no longer holds the job. The outcome notification (and, for a queue with limits,
-- the wake-up of its freed slot) is delivered only if the caller commits.
WITH completed AS (
    UPDATE {jobs}
    SET status = 'completed', finished_at = now(), result = $3::text::json,
        lease_expires_at = NULL, history = {ended_attempt('completed'; NULL)}
    WHERE id = $1 AND lease_token = $2 AND lease_expires_at IS NOT NULL
    RETURNING id, queue
)
SELECT id, pg_notify($4::text, 'o:' || id) IS NULL AS notified,
       (SELECT count(pg_notify($4::text, 'w:' || m.queue))
        FROM {limits} AS m WHERE m.queue = c.queue AND m.limits IS NOT NULL) AS woken
FROM completed AS c

-- name: rescue
-- The rule of Backend.rescue (backend.py): failed and claimable now while attempts are left.
WITH rescued AS (
    UPDATE {jobs}
    SET status = CASE WHEN attempts >= max_attempts THEN 'dead' ELSE 'failed' END,
        finished_at = CASE WHEN attempts >= max_attempts THEN now() END,
        scheduled_at = now(),
        last_error = 'lease expired',
        lease_expires_at = NULL,
        history = {ended_attempt(
            CASE WHEN attempts >= max_attempts THEN 'dead' ELSE 'failed' END;
            'lease expired')}
    WHERE status = 'running' AND lease_expires_at <= now()
    RETURNING id, queue, status
)
SELECT r.id, r.queue, r.status,
       (SELECT count(pg_notify($1, 'w:' || w.queue))
        FROM (SELECT DISTINCT queue FROM rescued AS d
              WHERE d.status = 'failed'
                 OR EXISTS (
                     SELECT 1 FROM {limits} AS m WHERE m.queue = d.queue AND m.limits IS NOT NULL
                 )) AS w)
     + (SELECT count(pg_notify($1, o.payload))
        FROM (SELECT CASE WHEN sum(octet_length(id) + 1) < 7000
                          THEN 'o:' || string_agg(id, ' ') ELSE 'o' END AS payload
              FROM rescued WHERE status = 'dead'
              HAVING count(*) > 0) AS o) AS notified
FROM rescued AS r

-- name: next_due
-- Seconds from now until the earliest claimable job in queues $1 is due (<= 0: one is due
-- now), or NULL when there is none; the same loose index scan as the claim (and the same
-- `attempts >= 0`, for the same reason). Of a queue with limits or a key held only the jobs
-- not due yet count: its due jobs may be held back, and waiting on them would spin; a slot
-- coming free there sends a wake-up instead (see `finish`), and the end of a window or of a
-- hold is seen at the waiter's timeout (the worker's poll interval). Expired jobs are not due:
-- no claim takes them (see `claim`).
WITH RECURSIVE levels AS (
    SELECT l.queue,
           EXISTS (
               SELECT 1 FROM {limits} AS m
               WHERE m.queue = l.queue
                 AND (m.limits IS NOT NULL OR m.held_until > extract(epoch FROM now()))
           ) AS limited,
           (SELECT j.priority FROM {jobs} AS j
            WHERE j.queue = l.queue AND j.status IN ('pending', 'failed') AND j.attempts >= 0
            ORDER BY j.priority DESC LIMIT 1) AS priority
    FROM unnest($1::text[]) AS l(queue)
    WHERE NOT EXISTS (SELECT 1 FROM {paused} AS p WHERE p.queue = l.queue)
    UNION ALL
    SELECT v.queue, v.limited,
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
      AND j.attempts >= 0 AND (NOT v.limited OR j.scheduled_at > now())
      AND (j.expires_at IS NULL OR j.started_at IS NOT NULL OR j.expires_at > now())
    ORDER BY j.scheduled_at
    LIMIT 1
) AS f
WHERE v.priority IS NOT NULL

-- name: notify
SELECT pg_notify($1, $2)

-- name: publish_events
-- Job events (queuekit.events): each chunk one notification on the events channel $1, in
-- order; and whether anyone listens to it, which an event listener says by holding a shared
-- advisory lock keyed on the channel (`listen_events`) for as long as its session LISTENs.
SELECT count(pg_notify($1, chunk)) AS sent,
       EXISTS (
           SELECT FROM pg_locks
           WHERE locktype = 'advisory' AND granted AND objsubid = 2
             AND classid = hashtext('queuekit events')::oid AND objid = hashtext($1)::oid
             AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
       ) AS heard
FROM unnest($2::text[]) AS chunk

-- name: listen_events
-- Said by an event listener's session once it LISTENs on the events channel $1 (see
-- `publish_events`); held until the session ends.
SELECT pg_advisory_lock_shared(hashtext('queuekit events'), hashtext($1))

-- name: get
-- The jobs with ids $1, each with its parents (its `parent_ids` and `parent_policies`, split
-- by the caller) and its dependents (ids, in enqueue order), read only where its flag says
-- there are some.
SELECT j.*,
       CASE WHEN j.has_dependents THEN ARRAY(
           SELECT d.child_id FROM {schema}."{table}_dependents"(ARRAY[j.id]) AS d
           ORDER BY d.child_seq
       ) END AS dependent_ids
FROM {jobs} AS j
WHERE j.id = ANY($1::text[])

-- The conditions a search adds to the list query, each with its argument at {arg} (see
-- `queuekit.search`): checked on the rows the list index picks by the other filters, so a
-- rare match reads many of them. Only ASCII letters are folded, as on every backend.

-- name: search_error
strpos(translate(last_error, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz'), {arg}) > 0

-- name: search_created_after
created_at >= {arg}

-- name: search_created_before
created_at < {arg}

-- name: search_workflow
workflow_id = {arg}

-- name: search_batch
batch_id = {arg}

-- name: batch_counts
-- The jobs of batch $1 per status, read from the batch index.
SELECT status, count(*) AS n FROM {jobs} WHERE batch_id = $1 GROUP BY status

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

-- Flow control: a queue's limits in {limits}, the state of its keys in {limit_keys} (see
-- migration 6 and queuekit/backends/flow.py). Times there are epoch seconds of the server's
-- clock.

-- name: set_limits
-- $1 queue, $2 its limits (JSON text), $3 the channel: idle workers look again at once, under
-- the new limits.
WITH stored AS (
    INSERT INTO {limits} (queue, limits) VALUES ($1, $2)
    ON CONFLICT (queue) DO UPDATE SET limits = excluded.limits
    RETURNING queue
)
SELECT count(pg_notify($3, 'w:' || queue)) AS notified FROM stored

-- name: clear_limits
-- $1 queue, $2 the channel. The row stays while a hold lasts; the keys' states stay, for
-- limits set again later.
WITH removed AS (
    DELETE FROM {limits}
    WHERE queue = $1 AND held_until <= extract(epoch FROM now())
    RETURNING queue
),
cleared AS (
    UPDATE {limits} SET limits = NULL
    WHERE queue = $1 AND limits IS NOT NULL AND held_until > extract(epoch FROM now())
    RETURNING queue
)
SELECT count(pg_notify($2, 'w:' || queue)) AS notified
FROM (SELECT queue FROM removed UNION ALL SELECT queue FROM cleared) AS q

-- name: get_limits
SELECT queue, limits FROM {limits} WHERE limits IS NOT NULL ORDER BY queue

-- name: limited_queues
-- The queues a claim takes under limits: those with limits, and those held now (`limits`
-- NULL), as the claim statement tells them.
SELECT m.queue, m.limits
FROM {limits} AS m
WHERE m.limits IS NOT NULL OR m.held_until > extract(epoch FROM now())

-- name: hold
-- $1 queue, $2 key ('' for the queue itself), $3 seconds from now; a later hold stays. The
-- queue's row in {limits} (made, without limits, if it has none) learns the hold too: while
-- it lasts the queue is claimed as a queue with limits is, with or without limits.
WITH queue_row AS (
    INSERT INTO {limits} AS m (queue, held_until)
    VALUES ($1, extract(epoch FROM now())::float8 + $3::float8)
    ON CONFLICT (queue) DO UPDATE SET held_until = greatest(m.held_until, excluded.held_until)
)
INSERT INTO {limit_keys} AS k (queue, key, held_until)
VALUES ($1, $2, extract(epoch FROM now())::float8 + $3::float8)
ON CONFLICT (queue, key) DO UPDATE SET held_until = greatest(k.held_until, excluded.held_until)

-- name: limit_usage
-- $1 queue, $2 how many of the busiest keys to count. The states read are the queue's own and
-- those of the keys held now: all that `flow.report` shows.
SELECT (SELECT limits FROM {limits} WHERE queue = $1) AS limits,
       extract(epoch FROM now())::float8 AS now,
       (SELECT count(*) FROM {jobs} WHERE queue = $1 AND status = 'running') AS running,
       r.keys AS running_keys, r.counts AS running_counts,
       s.keys AS state_keys, s.windows, s.started, s.held_until, s.served_at
FROM (
    SELECT array_agg(limit_key ORDER BY n DESC, limit_key) AS keys,
           array_agg(n ORDER BY n DESC, limit_key) AS counts
    FROM (
        SELECT limit_key, count(*) AS n
        FROM {jobs}
        WHERE queue = $1 AND status = 'running' AND limit_key IS NOT NULL
        GROUP BY limit_key
        ORDER BY n DESC, limit_key
        LIMIT $2
    ) AS busiest
) AS r,
(
    SELECT array_agg(key) AS keys, array_agg("window") AS windows, array_agg(started) AS started,
           array_agg(held_until) AS held_until, array_agg(served_at) AS served_at
    FROM {limit_keys}
    WHERE queue = $1 AND (key = '' OR held_until > extract(epoch FROM now()))
) AS s

-- name: forget_keys
-- $1, $2 the (queue, key) after which to look, $3 how many keys: one batch of the workers'
-- sweep of key states (migration 14). One row: `looked`, `last_queue`, `last_key`, `forgotten`.
SELECT * FROM {schema}."{table}_forget_keys"($1, $2, $3)

-- name: claim_limited
-- $1 queue, $2 free slots, $3 lease (s), $4 worker id, $5 lease token: the claim of a queue
-- with limits or a hold, one call of its function (migration 14): a row per claimed job, its
-- columns with `listed` and `limits` (see there), or one row with `listed` false.
SELECT c.listed, c.limits, (c.job).*
FROM {schema}."{table}_claim_limited"($1, $2, $3, $4, $5) AS c

-- name: counts
-- Per status of queue $1, from its counts (migration 18) and the changes not yet folded into
-- them; $2 is the success window (s). Read from the jobs themselves: the scheduled jobs due
-- within the current minute (the rest are told by their minute), the oldest due job (the
-- head of each priority's range of the claim index, found by a loose index scan) and the
-- leases run out. `recent` counts whole minutes: the window reaches up to a minute further
-- back.
WITH RECURSIVE priorities AS (
    (SELECT priority FROM {jobs}
     WHERE queue = $1 AND status IN ('pending', 'failed')
     ORDER BY priority DESC LIMIT 1)
    UNION ALL
    SELECT (SELECT j.priority FROM {jobs} AS j
            WHERE j.queue = $1 AND j.status IN ('pending', 'failed') AND j.priority < p.priority
            ORDER BY j.priority DESC LIMIT 1)
    FROM priorities AS p
    WHERE p.priority IS NOT NULL
),
this_minute AS (
    SELECT {schema}."{table}_count_minute"('pending', now(), NULL) + interval '1 minute' AS ends
),
heads AS (
    SELECT (SELECT min(j.scheduled_at) FROM {jobs} AS j
            WHERE j.queue = $1 AND j.status IN ('pending', 'failed') AND j.priority = p.priority)
               AS first_due,
           (SELECT count(*) FROM {jobs} AS j
            WHERE j.queue = $1 AND j.status IN ('pending', 'failed') AND j.priority = p.priority
              AND j.scheduled_at > now() AND j.scheduled_at < m.ends) AS due_this_minute
    FROM priorities AS p, this_minute AS m
    WHERE p.priority IS NOT NULL
),
kept AS (
    SELECT status, minute, n FROM {counts} WHERE queue = $1
    UNION ALL
    SELECT status, minute, n FROM {count_changes} WHERE queue = $1
),
totals AS (
    SELECT status,
           sum(n) AS n,
           sum(n) FILTER (WHERE minute >= (SELECT ends FROM this_minute)) AS later,
           sum(n) FILTER (WHERE minute + interval '1 minute' > now() - $2 * interval '1 second')
               AS recent
    FROM kept
    GROUP BY status
)
SELECT s.status,
       t.n,
       CASE WHEN s.status = 'pending' THEN
           (SELECT coalesce(sum(later), 0) FROM totals WHERE status IN ('pending', 'failed'))
           + (SELECT coalesce(sum(due_this_minute), 0) FROM heads)
       END AS scheduled,
       CASE WHEN s.status = 'pending' THEN
           (SELECT extract(epoch FROM now() - min(first_due))::float8 FROM heads
            HAVING min(first_due) <= now())
       END AS ready_age,
       t.recent,
       CASE WHEN s.status = 'running' THEN
           (SELECT count(*) FROM {jobs}
            WHERE status = 'running' AND lease_expires_at <= now() AND queue = $1)
       END AS expired
FROM (VALUES ('waiting'), ('pending'), ('running'), ('failed'), ('completed'), ('dead'),
             ('cancelled')) AS s (status)
LEFT JOIN totals AS t ON t.status = s.status

-- name: fold_counts
-- Move the changes appended since (migration 18) into the counts; with $2, also move each
-- count whose minute is no longer needed apart into its status's '-infinity' count (a read of
-- every count, so `stats` leaves it to the workers' rescue chore). $1 is the success window
-- (s). The upsert never targets a row the second DELETE takes: those are the minutes it moves
-- to '-infinity'. A concurrent fold waits for the rows this one takes, then skips them; both
-- upsert in key order, so they cannot deadlock.
WITH moved AS (
    DELETE FROM {count_changes}
    RETURNING queue, status, minute, n
),
aged AS (
    DELETE FROM {counts}
    WHERE $2 AND minute > '-infinity'
      AND NOT {schema}."{table}_count_kept"(status, minute, now(), $1 * interval '1 second')
    RETURNING queue, status, minute, n
)
INSERT INTO {counts} AS c (queue, status, minute, n)
SELECT queue, status,
       CASE WHEN {schema}."{table}_count_kept"(status, minute, now(), $1 * interval '1 second')
            THEN minute ELSE '-infinity' END,
       sum(n)
FROM (SELECT * FROM moved UNION ALL SELECT * FROM aged) AS changed
GROUP BY 1, 2, 3
HAVING sum(n) <> 0
ORDER BY 1, 2, 3
ON CONFLICT (queue, status, minute) DO UPDATE SET n = c.n + excluded.n

-- Cancel, replay, run_now and delete run on the rows a `{chosen}` statement picks,
-- `chosen_one`, `chosen_batch` or `chosen_passed` (filled in when the backend is created);
-- `{channel}` is the parameter after those the chosen statement takes. Each changes the chosen
-- rows that are `taken` and returns one row saying how many rows were chosen, the last chosen
-- seq and the seqs `passed_over` (chosen, not taken), joined to each row it changed (NULL
-- columns when none), so a bulk operation knows where to go on even when a concurrent change
-- left some chosen row alone.

-- name: chosen_one
-- The job with id $1. The statement waits for its row if another holds it.
SELECT seq, queue, unique_key, debounce_key, true AS taken FROM {jobs} WHERE id = $1

-- name: chosen_batch
-- One batch of a bulk operation: up to $5 jobs in status $1, of queue $2 and type $3 when not
-- NULL, after seq $4, oldest first. Each queue (every queue, found by a loose index scan, when
-- $2 is NULL) is read as a tight range of the list index (queue, status, seq), so a batch reads
-- about one batch of entries per queue. A row is taken only if it can be locked at once (SKIP
-- LOCKED): a batch never waits, so it cannot deadlock with a heartbeat or a finish that holds
-- other rows of it. A row another statement holds (or one that left the status since the
-- statement began) is chosen but not taken, and passed over to `chosen_passed`, which waits
-- for it: a heartbeat leaves a running job running, so skipping its row would leave the job
-- out of the batch.
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
),
seen AS MATERIALIZED (
    SELECT c.seq, c.queue, c.unique_key, c.debounce_key
    FROM lanes AS l
    CROSS JOIN LATERAL (
        SELECT j.seq, j.queue, j.unique_key, j.debounce_key
        FROM {jobs} AS j
        WHERE j.queue = l.queue AND j.status = $1::text AND j.seq > $4::bigint
          AND ($3::text IS NULL OR j.type = $3::text)
        ORDER BY j.seq
        LIMIT $5::int
    ) AS c
    ORDER BY c.seq
    LIMIT $5::int
)
SELECT s.seq, s.queue, s.unique_key, s.debounce_key, t.seq IS NOT NULL AS taken
FROM seen AS s
LEFT JOIN (
    -- The status again: a row changed since this statement began is locked as it is now, and
    -- taken only if it is still in the batch's status.
    SELECT seq FROM {jobs}
    WHERE seq = ANY(ARRAY(SELECT seq FROM seen)) AND status = $1::text
    FOR UPDATE SKIP LOCKED
) AS t ON t.seq = s.seq

-- name: chosen_passed
-- A job a batch passed over: seq $1, if it is still in status $2 once the row is free (FOR
-- UPDATE waits for it, then reads the row again). It holds one lock while it waits, so no
-- cycle of waits can run through it.
SELECT seq, queue, unique_key, debounce_key, true AS taken
FROM {jobs}
WHERE seq = $1::bigint AND status = $2::text
FOR UPDATE

-- name: cancel
WITH chosen AS MATERIALIZED ({chosen}),
cancelled AS (
    UPDATE {jobs}
    SET status = 'cancelled', finished_at = now(), lease_expires_at = NULL,
        history = CASE
            WHEN status = 'running' THEN {ended_attempt('cancelled'; NULL)}
            ELSE history
        END
    WHERE seq = ANY(ARRAY(SELECT seq FROM chosen WHERE taken))
      AND status IN ('waiting', 'pending', 'failed', 'running')
      -- The jobs cancelled here decide their dependents in one call (`decided`, see
      -- `decide_dependents`), as `finish` has them do: one trigger call each rewrote the
      -- callbacks of a batch once per member (migration 21).
      AND (SELECT set_config('queuekit.deciding', 'on', true)) = 'on'
    RETURNING *
),
decided AS ({decide_dependents:cancelled})
SELECT s.chosen, s.last_chosen, s.passed_over, s.decided, c.*
FROM (
    SELECT count(*) AS chosen, max(seq) AS last_chosen,
           ARRAY(SELECT seq FROM chosen WHERE NOT taken) AS passed_over,
           (SELECT count(*) FROM decided) AS decided,
           (SELECT count(pg_notify({channel}, o.payload))
            FROM (SELECT CASE WHEN sum(octet_length(id) + 1) < 7000
                              THEN 'o:' || string_agg(id, ' ') ELSE 'o' END AS payload
                  FROM cancelled
                  HAVING count(*) > 0) AS o) AS notified,
           -- `c:<ids>` (or a bare 'c'): jobs that may have been running, for the workers
           -- holding them (the listener's `losses`); never sent for a mere completion.
           (SELECT count(pg_notify({channel}, l.payload))
            FROM (SELECT CASE WHEN sum(octet_length(id) + 1) < 7000
                              THEN 'c:' || string_agg(id, ' ') ELSE 'c' END AS payload
                  FROM cancelled
                  WHERE started_at IS NOT NULL
                  HAVING count(*) > 0) AS l) AS pushed,
           -- A queue with limits may have got a slot back.
           (SELECT count(pg_notify({channel}, 'w:' || w.queue))
            FROM (SELECT DISTINCT queue FROM cancelled AS d
                  WHERE EXISTS (
                      SELECT 1 FROM {limits} AS m WHERE m.queue = d.queue AND m.limits IS NOT NULL
                  )) AS w)
               AS woken
    FROM chosen
) AS s
LEFT JOIN cancelled AS c ON true

-- name: expire
-- One batch of the sweep: up to $1 jobs that never started and expired by now, read from the
-- expiry index (locked as read, SKIP LOCKED: a claim or cancel under way keeps its row), are
-- cancelled as `cancel` cancels them, with the error 'expired'; $2 the channel, for the
-- outcome notification. No {limit_ready} row changes, as with `cancel`: a limited claim drops
-- a key's row once the key has no unfinished job left.
WITH chosen AS MATERIALIZED (
    SELECT seq FROM {jobs}
    WHERE expires_at IS NOT NULL AND status = 'pending' AND started_at IS NULL
      AND expires_at <= now()
    ORDER BY expires_at
    LIMIT $1
    FOR UPDATE SKIP LOCKED
),
expired AS (
    UPDATE {jobs}
    SET status = 'cancelled', finished_at = now(), last_error = 'expired'
    WHERE seq = ANY(ARRAY(SELECT seq FROM chosen)) AND status = 'pending'
    RETURNING id
)
SELECT (SELECT count(*) FROM chosen) AS chosen, ARRAY(SELECT id FROM expired) AS ids,
       (SELECT count(pg_notify($2, o.payload))
        FROM (SELECT CASE WHEN sum(octet_length(id) + 1) < 7000
                          THEN 'o:' || string_agg(id, ' ') ELSE 'o' END AS payload
              FROM expired
              HAVING count(*) > 0) AS o) AS notified

-- name: replay
-- Another job holding a chosen job's unique key (live, or finished in its `unique_states` with
-- its hold not over) or its debounce key (unstarted) blocks the replay, and of chosen jobs
-- sharing a key only the oldest is replayed; a job that holds its own key is replayed. A
-- concurrent holder that the NOT EXISTS cannot see yet is caught by the unique indexes (the
-- caller runs the statement again). Holders of the chosen keys whose hold is over are let go
-- first, as an enqueue lets them go (`released`: `replayed` reads it before it changes a row,
-- so no replayed row meets them in the index); the jobs to be replayed keep their own states.
-- A replayed job runs whatever its parents did (the operator's choice): no parent cancels it
-- any more.
WITH chosen AS MATERIALIZED ({chosen}),
released AS MATERIALIZED (
    UPDATE {jobs} AS h
    SET unique_states = NULL
    FROM (SELECT DISTINCT queue, unique_key FROM chosen WHERE unique_key IS NOT NULL) AS c
    WHERE h.queue = c.queue AND h.unique_key = c.unique_key AND h.unique_key IS NOT NULL
      AND h.status IN ('completed', 'dead', 'cancelled')
      AND h.status = ANY(string_to_array(h.unique_states, ',')) AND h.unique_until <= now()
      AND h.seq <> ALL(ARRAY(
          SELECT min(seq) FROM chosen WHERE unique_key IS NOT NULL GROUP BY queue, unique_key
      ))
    RETURNING h.seq
),
replayed AS (
    UPDATE {jobs} AS j
    SET status = 'pending', attempts = 0, scheduled_at = now(), started_at = NULL,
        finished_at = NULL, worker_id = NULL, result = NULL, expires_at = NULL,
        cancelled_by = NULL
    WHERE j.seq = ANY(ARRAY(SELECT seq FROM chosen WHERE taken))
      AND j.status IN ('dead', 'cancelled')
      AND (SELECT count(*) FROM released) >= 0
      AND NOT EXISTS (
          SELECT 1 FROM {jobs} AS other
          WHERE other.queue = j.queue AND other.unique_key = j.unique_key
            AND other.seq <> j.seq
            AND (other.status IN ('waiting', 'pending', 'running', 'failed')
                 OR (other.status = ANY(string_to_array(other.unique_states, ','))
                     AND (other.unique_until IS NULL OR other.unique_until > now())))
      )
      AND NOT EXISTS (
          SELECT 1 FROM {jobs} AS other
          WHERE other.queue = j.queue AND other.debounce_key = j.debounce_key
            AND other.status IN ('waiting', 'pending')
      )
      AND NOT EXISTS (
          SELECT 1 FROM chosen AS twin
          WHERE twin.queue = j.queue AND twin.seq < j.seq
            AND (twin.unique_key = j.unique_key OR twin.debounce_key = j.debounce_key)
      )
    RETURNING j.*
),
ready AS ({add_ready_keys:replayed})
SELECT s.chosen, s.last_chosen, s.passed_over, r.*
FROM (
    SELECT count(*) AS chosen, max(seq) AS last_chosen,
           ARRAY(SELECT seq FROM chosen WHERE NOT taken) AS passed_over,
           (SELECT count(pg_notify({channel}, 'w:' || q.queue))
            FROM (SELECT DISTINCT queue FROM replayed) AS q) AS notified
    FROM chosen
) AS s
LEFT JOIN replayed AS r ON true

-- name: run_now
-- A pending job scheduled later or a failed one waiting for its retry becomes due now, its
-- attempts kept, and idle workers are woken as by an enqueue. It stays claimable, so its key
-- keeps its {limit_ready} row (a claim drops one only once its key has no unfinished job).
WITH chosen AS MATERIALIZED ({chosen}),
made_due AS (
    UPDATE {jobs}
    SET scheduled_at = now()
    WHERE seq = ANY(ARRAY(SELECT seq FROM chosen WHERE taken))
      AND status IN ('pending', 'failed')
      AND scheduled_at > now()
    RETURNING *
)
SELECT s.chosen, s.last_chosen, s.passed_over, m.*
FROM (
    SELECT count(*) AS chosen, max(seq) AS last_chosen,
           ARRAY(SELECT seq FROM chosen WHERE NOT taken) AS passed_over,
           (SELECT count(pg_notify({channel}, 'w:' || q.queue))
            FROM (SELECT DISTINCT queue FROM made_due) AS q) AS notified
    FROM chosen
) AS s
LEFT JOIN made_due AS m ON true

-- name: delete
WITH chosen AS MATERIALIZED ({chosen}),
deleted AS (
    DELETE FROM {jobs}
    WHERE seq = ANY(ARRAY(SELECT seq FROM chosen WHERE taken)) AND status <> 'running'
    RETURNING id
)
SELECT s.chosen, s.last_chosen, s.passed_over, d.id
FROM (
    SELECT count(*) AS chosen, max(seq) AS last_chosen,
           ARRAY(SELECT seq FROM chosen WHERE NOT taken) AS passed_over
    FROM chosen
) AS s
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
-- nested loop that rescanned the subquery for every row.) A job whose unique key's hold lasts
-- past now is kept (it still holds its key); rows passed over that way are read again by
-- each batch.
SELECT seq, finished_at FROM {jobs}
WHERE status = $1 AND finished_at IS NOT NULL AND finished_at <= $2
  AND (unique_until IS NULL OR unique_until <= now())
ORDER BY finished_at
LIMIT $3

-- name: prune
DELETE FROM {jobs}
WHERE seq = ANY($3::bigint[]) AND status = $1 AND finished_at <= $2
  AND finished_at BETWEEN $4 AND $5 AND (unique_until IS NULL OR unique_until <= now())

-- The worker registry (workers.py; migration 10), in {schema}."{table}_workers".

-- name: beat_worker
-- Upsert the worker's row ($1 id, $2 info, $3 ttl in seconds), keeping its start and any drain
-- request; in the same statement, delete the rows of the long silent (past `forget_at`) that
-- no other beat is deleting.
WITH forgotten AS (
    DELETE FROM {schema}."{table}_workers"
    WHERE id IN (
        SELECT id FROM {schema}."{table}_workers"
        WHERE forget_at < now() AND id <> $1
        FOR UPDATE SKIP LOCKED
    )
)
INSERT INTO {schema}."{table}_workers" AS w
    (id, info, started_at, last_seen, expires_at, forget_at)
VALUES (
    $1, $2, now(), now(), now() + $3::float8 * interval '1 second',
    now() + 2 * $3::float8 * interval '1 second'
)
ON CONFLICT (id) DO UPDATE SET
    info = excluded.info, last_seen = excluded.last_seen, expires_at = excluded.expires_at,
    forget_at = excluded.forget_at
RETURNING w.draining

-- name: list_workers
SELECT id, info, started_at, last_seen, draining FROM {schema}."{table}_workers"
WHERE expires_at > now() ORDER BY id

-- name: drain_worker
UPDATE {schema}."{table}_workers" SET draining = true WHERE id = $1 AND expires_at > now()
RETURNING id

-- name: remove_worker
DELETE FROM {schema}."{table}_workers" WHERE id = $1

-- name: add_activity
-- $1 counts to add, a JSON array of {queue, enqueued, completed, failed, dead, wait, run} with
-- one entry per queue (wait and run: counts per time bucket, see queuekit/activity.py); $2 keep
-- (s). Adds them to each queue's current minute and forgets those queues' minutes that began
-- over $2 seconds ago. Rows are locked in queue order, and old ones skipped while another
-- write deletes them, so concurrent writers never deadlock. Returns the minute and the queues
-- whose row this write created (a row just inserted has no xmax; one updated by ON CONFLICT
-- has this transaction's): those, and no other write's, get their depth sampled.
WITH input AS (
    SELECT * FROM jsonb_to_recordset($1::jsonb) AS i(
        queue text, enqueued bigint, completed bigint, failed bigint, dead bigint,
        wait bigint[], run bigint[]
    )
),
forgotten AS (
    DELETE FROM {schema}."{table}_activity"
    WHERE (queue, minute) IN (
        SELECT queue, minute FROM {schema}."{table}_activity"
        WHERE queue IN (SELECT queue FROM input)
          AND minute < now() - $2::float8 * interval '1 second'
        FOR UPDATE SKIP LOCKED
    )
)
INSERT INTO {schema}."{table}_activity" AS a
    (queue, minute, enqueued, completed, failed, dead, wait, run)
SELECT queue, to_timestamp(floor(extract(epoch FROM now()) / 60) * 60),
       enqueued, completed, failed, dead, wait, run
FROM input ORDER BY queue
ON CONFLICT (queue, minute) DO UPDATE SET
    enqueued = a.enqueued + excluded.enqueued,
    completed = a.completed + excluded.completed,
    failed = a.failed + excluded.failed,
    dead = a.dead + excluded.dead,
    wait = ARRAY(
        SELECT coalesce(x, 0) + coalesce(y, 0)
        FROM unnest(a.wait, excluded.wait) WITH ORDINALITY AS t(x, y, n) ORDER BY n
    ),
    run = ARRAY(
        SELECT coalesce(x, 0) + coalesce(y, 0)
        FROM unnest(a.run, excluded.run) WITH ORDINALITY AS t(x, y, n) ORDER BY n
    )
RETURNING queue, minute, xmax = 0 AS created

-- name: sample_depth
-- $1 the queues whose minute $2 the last add_activity created, $3 the cap: each one's ready
-- jobs (claimable, due by now) counted into its row, reading at most $3 entries of the claim
-- index however deep the queue is.
UPDATE {schema}."{table}_activity" AS a
SET depth = (
    SELECT count(*) FROM (
        SELECT 1 FROM {jobs} AS j
        WHERE j.queue = a.queue AND j.status IN ('pending', 'failed') AND j.scheduled_at <= now()
        LIMIT $3
    ) AS ready
)
WHERE a.queue = ANY($1::text[]) AND a.minute = $2

-- name: activity
-- $1 queue, $2 minutes: the queue's minutes among the last $2 (the current one included).
SELECT queue, minute, enqueued, completed, failed, dead, wait, run, depth
FROM {schema}."{table}_activity"
WHERE queue = $1 AND minute > now() - $2::int * interval '1 minute'
ORDER BY minute
