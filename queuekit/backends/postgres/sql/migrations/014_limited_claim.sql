-- queuekit's PostgreSQL schema, version 14: the claim of a queue with limits, as one function.
--
-- `{table}_claim_limited` claims up to `free` jobs of one queue under its limits and holds in
-- one call, so in one round trip: it takes the queue's lock, reads under it, decides as
-- `flow.choose` decides (queuekit/backends/flow.py, the rule docs/limits.md states: keys take
-- turns, least recently served first, ties by key, one job per turn), claims and writes the
-- key states back. Its statements run one after another, each with a snapshot of its own
-- (READ COMMITTED), so the reads after the lock see everything the claim before committed.
--
-- The lock is a transaction-level advisory lock on the queue (not a row lock on its row in
-- {limits}, which would write the row's page on every claim): the claims of one limited
-- queue run one at a time on every host. A key's own advisory lock ('{jobs}/queue/key') is
-- what an enqueue takes shared to add the key's row in {limit_ready}; the claim only tries
-- it (never waits), to forget a key left with no unfinished job.
--
-- Returns one row per job claimed, in the order chosen (`limits` the limits read: JSON
-- text, NULL for a hold alone), or, when the queue has neither limits nor a hold now, one
-- row with `listed` false and no job: the caller then claims it the ordinary way. The
-- settings are those queuekit's sessions have (connections.py): set here, they hold through
-- a transaction-mode PgBouncer as well, with no SET LOCAL round trips.
--
-- `version` counted the claims for the lock-free read this function replaces.
ALTER TABLE {limits} DROP COLUMN version;

-- `flow.forgettable`: whether the state of a key with no unfinished job may go (no hold of it
-- lasts, no rate window of it still counts). Inlined where it is used.
CREATE FUNCTION {schema}."{table}_forgettable"(
    held_until float8, started integer, "window" float8, period float8, now float8
) RETURNS boolean
LANGUAGE sql IMMUTABLE
AS $function$
SELECT held_until <= now AND (started = 0 OR "window" + period <= now)
$function$;

-- Whether a key of a queue ('' for its keyless jobs) has no unfinished (pending, running or
-- failed) job left, with the caller's snapshot. Scalar subqueries, not NOT EXISTS, so that no
-- plan makes an anti join reading every keyed job of the queue: each is one index probe.
CREATE FUNCTION {schema}."{table}_key_idle"(p_queue text, p_key text) RETURNS boolean
LANGUAGE sql STABLE
AS $function$
SELECT CASE WHEN p_key = '' THEN
    (SELECT j.seq FROM {jobs} AS j
     WHERE j.queue = p_queue AND j.limit_key IS NULL
       AND j.status IN ('pending', 'running', 'failed')
     LIMIT 1) IS NULL
ELSE
    (SELECT j.seq FROM {jobs} AS j
     WHERE j.queue = p_queue AND j.limit_key = p_key
       AND j.status IN ('pending', 'running', 'failed')
     LIMIT 1) IS NULL
END
$function$;

CREATE FUNCTION {schema}."{table}_claim_limited"(
    p_queue text, p_free integer, p_lease float8, p_worker text, p_token text
) RETURNS TABLE (listed boolean, limits text, job {jobs})
LANGUAGE plpgsql VOLATILE
SET enable_seqscan = off SET plan_cache_mode = force_generic_plan SET jit = off
AS $function$
#variable_conflict use_column
DECLARE
    v_limits text;
    v_parsed jsonb;
    v_paused boolean;
    v_keyless_ready boolean;
    v_held float8;              -- the latest hold of the queue or of any of its keys
    v_concurrency integer;
    v_per_key integer;
    v_rate integer;
    v_key_rate integer;
    v_period float8;
    v_ordered boolean;
    v_ts timestamptz;           -- the claim's instant: its jobs' start
    v_now float8;               -- the same, as epoch seconds (what {limit_keys} holds)
    v_window float8;            -- the start of the current rate window
    v_running jsonb;            -- running jobs per key
    v_running_total integer;
    v_q_window float8;          -- the queue's own state, key ''
    v_q_started integer;
    v_q_held float8;
    v_q_served float8;
    v_room integer;
    v_take integer;             -- the most jobs one key can offer
    v_need_states boolean;
    v_keyless bigint[] := '{}';
    v_keyless_counted boolean := false;
    v_offering integer := 0;    -- keys read that offer a job, in turn order
    v_seqs bigint[] := '{}';    -- the offers: job, its turn within its key, the key's turn
    v_turns integer[] := '{}';
    v_served float8[] := '{}';
    v_keys text[] := '{}';
    v_dead text[] := '{}';
    v_batch integer;
    v_read integer;
    v_after_served float8 := -1;
    v_after_key text := '';
    v_chosen bigint[];          -- the jobs chosen, in order
    v_chosen_keys text[];       -- their keys ('' for keyless jobs)
    v_offered integer;          -- keys of a batch that offer a job
    v_idle text[];
    v_key text;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtextextended('{jobs}/' || p_queue, 0));

    -- Everything the claim reads before the keys, in one statement after the lock: the
    -- queue's limits and hold, whether it is paused, its running jobs, its own state (key
    -- ''), whether it may have keyless jobs ({limit_ready} has their row), and the claim's
    -- instant (its jobs' start), the clock read after the snapshot was taken: so every finish
    -- the claim counts as done has an earlier `finished_at` (its transaction's start) than
    -- the starts it makes.
    SELECT m.limits, m.held_until,
           EXISTS (SELECT 1 FROM {paused} AS p WHERE p.queue = p_queue),
           r.running, r.total, clock_timestamp(),
           s."window", coalesce(s.started, 0), coalesce(s.held_until, 0),
           coalesce(s.served_at, 0),
           EXISTS (SELECT 1 FROM {limit_ready} AS k WHERE k.queue = p_queue AND k.key = '')
    INTO v_limits, v_held, v_paused, v_running, v_running_total, v_ts, v_q_window,
         v_q_started, v_q_held, v_q_served, v_keyless_ready
    FROM {limits} AS m
    CROSS JOIN (
        SELECT coalesce(jsonb_object_agg(n.key, n.jobs) FILTER (WHERE n.key IS NOT NULL), '{}')
                   AS running,
               coalesce(sum(n.jobs), 0) AS total
        FROM (SELECT j.limit_key AS key, count(*) AS jobs FROM {jobs} AS j
              WHERE j.queue = p_queue AND j.status = 'running' GROUP BY j.limit_key) AS n
    ) AS r
    LEFT JOIN {limit_keys} AS s ON s.queue = p_queue AND s.key = ''
    WHERE m.queue = p_queue;
    IF NOT FOUND OR (v_limits IS NULL AND v_held <= extract(epoch FROM v_ts)) THEN
        RETURN QUERY SELECT false, NULL::text, NULL::{jobs};
        RETURN;
    END IF;
    IF v_paused THEN
        RETURN;
    END IF;
    v_parsed := coalesce(v_limits, '{}')::jsonb;
    v_concurrency := (v_parsed ->> 'concurrency')::integer;
    v_per_key := (v_parsed ->> 'per_key')::integer;
    v_rate := (v_parsed ->> 'rate')::integer;
    v_key_rate := (v_parsed ->> 'key_rate')::integer;
    v_period := coalesce((v_parsed ->> 'period')::float8, 60);
    v_ordered := coalesce((v_parsed ->> 'ordered')::boolean, false);
    v_now := extract(epoch FROM v_ts);
    v_window := floor(v_now / v_period) * v_period;  -- flow.window_start
    IF v_q_window IS DISTINCT FROM v_window THEN
        v_q_started := 0;  -- flow.current: an earlier window's starts no longer count
    END IF;

    -- flow.queue_room
    v_room := CASE WHEN v_q_held > v_now THEN 0 ELSE p_free END;
    v_room := least(v_room, v_concurrency - v_running_total, v_rate - v_q_started);
    IF v_room <= 0 THEN
        RETURN;
    END IF;
    v_take := least(v_room, v_per_key, v_key_rate);
    -- A key's rate window and hold matter only under a `key_rate` or while some key is held.
    v_need_states := v_key_rate IS NOT NULL OR v_held > v_now;

    -- The keyless jobs take their turns together, as the key '' (only when the queue may
    -- have some: {limit_ready} has its row).
    IF v_keyless_ready THEN
        v_keyless := ARRAY(
            SELECT j.seq FROM {jobs} AS j
            WHERE j.queue = p_queue AND j.limit_key IS NULL
              AND j.status IN ('pending', 'failed') AND j.scheduled_at <= now()
              AND (j.expires_at IS NULL OR j.started_at IS NOT NULL OR j.expires_at > now())
            ORDER BY j.priority DESC, j.scheduled_at, j.seq
            LIMIT v_room);
        FOR i IN 1 .. cardinality(v_keyless) LOOP
            v_seqs := v_seqs || v_keyless[i]; v_turns := v_turns || (i - 1);
            v_served := v_served || v_q_served; v_keys := v_keys || ''::text;
        END LOOP;
        -- (Nested: the lock is tried only once the key is found idle.)
        IF cardinality(v_keyless) = 0 AND {schema}."{table}_key_idle"(p_queue, '') THEN
            IF pg_try_advisory_xact_lock(hashtextextended('{jobs}/' || p_queue || '/', 0)) THEN
                v_dead := v_dead || ''::text;
            END IF;
        END IF;
    END IF;

    -- The keys in turn order, (served_at, key), by the index of {limit_ready}, batch after
    -- batch (the first a few more than the room, for keys that cannot start a job to be
    -- stepped over; each next one twice as large): once `v_room` keys read offer a job, their
    -- first jobs outrank every job of the keys not read, so the walk stops there, and a claim
    -- costs about as many keys as it takes however many wait. (Each batch is a LIMIT: without
    -- one, a plan made from stale statistics sorts every key of the queue, reading each one's
    -- jobs first.) Each key offers as many of its due jobs, in claim order, as its own limits
    -- let start (flow.startable), at most `v_take`; with `ordered` limits only its first
    -- unfinished job, when that job is claimable and none of the key's runs. A key with no
    -- offer, none running and no unfinished job left is idle: its row goes below.
    v_batch := v_room + 4;
    LOOP
        WITH keys AS MATERIALIZED (
            SELECT t.served_at, t.key FROM {limit_ready} AS t
            WHERE t.queue = p_queue AND (t.served_at, t.key) > (v_after_served, v_after_key)
              AND t.key <> ''
            ORDER BY t.served_at, t.key
            LIMIT v_batch
        ),
        capped AS MATERIALIZED (
            SELECT k.served_at, k.key, coalesce((v_running ->> k.key)::integer, 0) AS running,
                   CASE WHEN coalesce(s.held_until, 0) > v_now THEN 0
                        ELSE least(v_take,
                                   v_per_key - coalesce((v_running ->> k.key)::integer, 0),
                                   v_key_rate - CASE WHEN s."window" = v_window
                                                     THEN s.started ELSE 0 END)
                   END AS cap
            FROM keys AS k
            LEFT JOIN LATERAL (
                SELECT l."window", l.started, l.held_until FROM {limit_keys} AS l
                WHERE v_need_states AND l.queue = p_queue AND l.key = k.key
                LIMIT 1
            ) AS s ON true
        ),
        offers AS MATERIALIZED (
            SELECT c.served_at, c.key, o.seq, o.turn - 1 AS turn
            FROM capped AS c
            CROSS JOIN LATERAL unnest(CASE WHEN v_ordered THEN ARRAY(
                SELECT h.seq FROM (
                    SELECT j.seq, j.status, j.scheduled_at, j.expires_at, j.started_at
                    FROM {jobs} AS j
                    WHERE j.queue = p_queue AND j.limit_key = c.key
                      AND j.status IN ('pending', 'running', 'failed')
                    ORDER BY j.seq LIMIT 1) AS h
                WHERE c.running = 0 AND h.status IN ('pending', 'failed')
                  AND h.scheduled_at <= now()
                  AND (h.expires_at IS NULL OR h.started_at IS NOT NULL OR h.expires_at > now()))
            ELSE ARRAY(
                SELECT j.seq FROM {jobs} AS j
                WHERE j.queue = p_queue AND j.limit_key = c.key
                  AND j.status IN ('pending', 'failed') AND j.scheduled_at <= now()
                  AND (j.expires_at IS NULL OR j.started_at IS NOT NULL OR j.expires_at > now())
                ORDER BY j.priority DESC, j.scheduled_at, j.seq
                LIMIT c.cap)
            END) WITH ORDINALITY AS o(seq, turn)
            WHERE c.cap > 0
        )
        SELECT b.keys, l.served_at, l.key, a.keys, v_seqs || a.seqs, v_turns || a.turns,
               v_served || a.served, v_keys || a.keys_offering,
               -- flow.choose over every offer so far: each key's n-th job ranks by (n, the
               -- key's served_at, key). (Kept only from the batch that ends the walk.)
               -- (Each offer's rank is unique, so the two arrays line up.)
               ARRAY(SELECT o.seq
                     FROM unnest(v_seqs || a.seqs, v_turns || a.turns, v_served || a.served,
                                 v_keys || a.keys_offering) AS o(seq, turn, served, key)
                     ORDER BY o.turn, o.served, o.key COLLATE "C"
                     LIMIT v_room),
               ARRAY(SELECT o.key
                     FROM unnest(v_seqs || a.seqs, v_turns || a.turns, v_served || a.served,
                                 v_keys || a.keys_offering) AS o(seq, turn, served, key)
                     ORDER BY o.turn, o.served, o.key COLLATE "C"
                     LIMIT v_room),
               -- (A CASE, so that the costly test runs only for keys with no offer.)
               ARRAY(SELECT c.key FROM capped AS c
                     WHERE CASE WHEN c.running = 0
                                     AND NOT EXISTS (SELECT 1 FROM offers AS o WHERE o.key = c.key)
                                THEN {schema}."{table}_key_idle"(p_queue, c.key)
                                ELSE false END)
        FROM (SELECT count(*)::integer AS keys FROM keys) AS b
        LEFT JOIN LATERAL (
            SELECT k.served_at, k.key FROM keys AS k ORDER BY k.served_at DESC, k.key DESC LIMIT 1
        ) AS l ON true
        CROSS JOIN (
            -- (One scan: the arrays line up.)
            SELECT count(DISTINCT o.key)::integer AS keys,
                   coalesce(array_agg(o.seq), '{}') AS seqs,
                   coalesce(array_agg(o.turn::integer), '{}') AS turns,
                   coalesce(array_agg(o.served_at), '{}') AS served,
                   coalesce(array_agg(o.key), '{}') AS keys_offering
            FROM offers AS o
        ) AS a
        INTO v_read, v_after_served, v_after_key, v_offered, v_seqs, v_turns, v_served, v_keys,
             v_chosen, v_chosen_keys, v_idle;
        v_offering := v_offering + v_offered;
        -- The keyless turn, ('', served_at), comes before every key served no earlier.
        IF NOT v_keyless_counted AND (v_read < v_batch OR v_q_served <= v_after_served) THEN
            v_keyless_counted := true;
            v_offering := v_offering + least(cardinality(v_keyless), 1);
        END IF;
        -- An idle key's row goes (below) if its lock is free: tried only once found idle.
        FOREACH v_key IN ARRAY v_idle LOOP
            IF pg_try_advisory_xact_lock(hashtextextended('{jobs}/' || p_queue || '/' || v_key, 0))
            THEN
                v_dead := v_dead || v_key;
            END IF;
        END LOOP;
        EXIT WHEN v_offering >= v_room OR v_read < v_batch;
        v_batch := 2 * v_batch;
    END LOOP;

    -- The claim, and the turns it moves. The jobs are claimed as `claim` claims them, and
    -- only while still claimable (a cancel may have come first): found by primary key; the
    -- status test is a subquery so that no plan takes it for an index condition. A keyed
    -- key's turn is its row's in {limit_ready}, found by primary key and updated by address
    -- (given the keys to match, a plan made while the table was small reads every key's row
    -- of the queue); only a claim of the queue, under its lock, changes those rows.
    IF cardinality(v_chosen) > 0 THEN
        RETURN QUERY
        WITH claimed AS (
            UPDATE {jobs} AS j
            SET status = 'running',
                attempts = j.attempts + 1,
                started_at = v_ts,
                lease_expires_at = v_ts + p_lease * interval '1 second',
                worker_id = p_worker,
                lease_token = p_token
            WHERE j.seq = ANY(v_chosen) AND (SELECT j.status IN ('pending', 'failed'))
              AND (j.expires_at IS NULL OR j.started_at IS NOT NULL OR j.expires_at > v_ts)
            RETURNING j AS claimed_row, j.seq
        ),
        turned AS (
            UPDATE {limit_ready} AS t
            SET served_at = v_now
            WHERE t.ctid = ANY(ARRAY(
                SELECT x.ctid FROM (SELECT DISTINCT k.key FROM unnest(v_chosen_keys) AS k(key)
                                    WHERE k.key <> '') AS s
                CROSS JOIN LATERAL (
                    SELECT x.ctid FROM {limit_ready} AS x
                    WHERE x.queue = p_queue AND x.key = s.key LIMIT 1
                ) AS x
            ))
        )
        SELECT true, v_limits, c.claimed_row FROM claimed AS c
        ORDER BY array_position(v_chosen, c.seq);
    END IF;

    -- The starts, counted only under a rate (flow.choose): a key's in {limit_keys} under
    -- `key_rate`, the queue's (key '') under `rate`; the queue's row also keeps the keyless
    -- jobs' turn. (A job chosen but cancelled meanwhile counts as a start.) A hold is never
    -- written here (`hold` may have raised it).
    IF cardinality(v_chosen) > 0
       AND (v_key_rate IS NOT NULL OR v_rate IS NOT NULL OR '' = ANY(v_chosen_keys)) THEN
        INSERT INTO {limit_keys} AS k (queue, key, "window", started, served_at)
        SELECT p_queue, w.key, v_window, count(*)::integer, v_now
        FROM unnest(v_chosen_keys) AS w(key)
        WHERE w.key <> '' AND v_key_rate IS NOT NULL
        GROUP BY w.key
        UNION ALL
        SELECT p_queue, '', v_window,
               CASE WHEN v_rate IS NULL THEN 0 ELSE cardinality(v_chosen) END,
               CASE WHEN '' = ANY(v_chosen_keys) THEN v_now ELSE 0 END
        WHERE v_rate IS NOT NULL OR '' = ANY(v_chosen_keys)
        ON CONFLICT (queue, key) DO UPDATE
            SET started = CASE WHEN k."window" = excluded."window" THEN k.started ELSE 0 END
                          + excluded.started,
                "window" = excluded."window",
                served_at = CASE WHEN excluded.served_at > 0 THEN excluded.served_at
                                 ELSE k.served_at END;
    END IF;

    -- The idle keys, locked above, checked again with this statement's snapshot, taken
    -- after the locks: so it sees every enqueue of them that committed before, and none is
    -- under way. A chosen key is never an idle one. A forgotten key's state goes too, unless
    -- a rate window of its or a hold is still open: then it stays (with its turn, which an
    -- enqueue of the key reads back) until the workers' sweep (`forget_keys`). Not the
    -- queue's own row (''), kept while the queue is.
    IF cardinality(v_dead) > 0 THEN
        WITH forgotten AS (
            DELETE FROM {limit_ready} AS t
            WHERE t.queue = p_queue AND t.key = ANY(v_dead)
              AND {schema}."{table}_key_idle"(p_queue, t.key)
            RETURNING t.key, t.served_at
        ),
        kept AS (
            UPDATE {limit_keys} AS k SET served_at = f.served_at
            FROM forgotten AS f
            WHERE k.queue = p_queue AND k.key = f.key AND f.key <> ''
              AND NOT {schema}."{table}_forgettable"(
                  k.held_until, k.started, k."window", v_period, v_now)
        )
        DELETE FROM {limit_keys} AS k
        USING forgotten AS f
        WHERE k.queue = p_queue AND k.key = f.key AND f.key <> ''
          AND {schema}."{table}_forgettable"(k.held_until, k.started, k."window", v_period, v_now);
    END IF;
END
$function$;

-- The workers' sweep of key states (`forget_keys` in queries.sql, with `expire`): the keys of
-- every queue, limited or not, after (p_queue, p_key) in key order, at most `p_batch` of them,
-- from {limit_ready} and {limit_keys} (not a queue's own row ''). Each key left with no
-- unfinished job loses its row in {limit_ready}, as a claim drops it (under the key's lock,
-- tried, never waited for, then checked again with the next statement's snapshot), and its
-- state in {limit_keys} unless a hold or rate window of it is still open: so neither table
-- keeps every key ever seen, including those of queues a limited claim never reads. Returns
-- how many keys it looked at, the last, and how many rows it deleted.
CREATE FUNCTION {schema}."{table}_forget_keys"(p_queue text, p_key text, p_batch integer)
RETURNS TABLE (looked integer, last_queue text, last_key text, forgotten integer)
LANGUAGE plpgsql VOLATILE
SET enable_seqscan = off SET plan_cache_mode = force_generic_plan SET jit = off
AS $function$
#variable_conflict use_column
DECLARE
    v_queues text[];
    v_keys text[];
    v_now float8 := extract(epoch FROM clock_timestamp());
BEGIN
    WITH seen AS MATERIALIZED (
        SELECT u.queue, u.key FROM (
            (SELECT r.queue, r.key FROM {limit_ready} AS r
             WHERE (r.queue, r.key) > (p_queue, p_key)
             ORDER BY r.queue, r.key LIMIT p_batch)
            UNION
            (SELECT k.queue, k.key FROM {limit_keys} AS k
             WHERE (k.queue, k.key) > (p_queue, p_key) AND k.key <> ''
             ORDER BY k.queue, k.key LIMIT p_batch)
        ) AS u
        ORDER BY u.queue, u.key
        LIMIT p_batch
    ),
    idle AS MATERIALIZED (
        SELECT s.queue, s.key FROM seen AS s WHERE {schema}."{table}_key_idle"(s.queue, s.key)
    ),
    locked AS MATERIALIZED (
        SELECT i.queue, i.key FROM idle AS i
        WHERE pg_try_advisory_xact_lock(hashtextextended('{jobs}/' || i.queue || '/' || i.key, 0))
    )
    SELECT (SELECT count(*) FROM seen)::integer,
           (SELECT s.queue FROM seen AS s ORDER BY s.queue DESC, s.key DESC LIMIT 1),
           (SELECT s.key FROM seen AS s ORDER BY s.queue DESC, s.key DESC LIMIT 1),
           ARRAY(SELECT l.queue FROM locked AS l), ARRAY(SELECT l.key FROM locked AS l)
    INTO looked, last_queue, last_key, v_queues, v_keys;

    -- A new snapshot, taken after the locks: it sees every enqueue of those keys that
    -- committed before, and none is under way.
    WITH gone AS (
        DELETE FROM {limit_ready} AS r
        USING unnest(v_queues, v_keys) AS f(queue, key)
        WHERE r.queue = f.queue AND r.key = f.key AND {schema}."{table}_key_idle"(r.queue, r.key)
        RETURNING r.queue, r.key, r.served_at
    ),
    states AS MATERIALIZED (
        SELECT k.queue, k.key, g.served_at,
               {schema}."{table}_forgettable"(
                   k.held_until, k.started, k."window",
                   coalesce((m.limits::jsonb ->> 'period')::float8, 60), v_now) AS forgettable
        FROM unnest(v_queues, v_keys) AS f(queue, key)
        JOIN {limit_keys} AS k ON k.queue = f.queue AND k.key = f.key
        LEFT JOIN gone AS g ON g.queue = f.queue AND g.key = f.key
        LEFT JOIN {limits} AS m ON m.queue = f.queue
        WHERE f.key <> '' AND {schema}."{table}_key_idle"(f.queue, f.key)
    ),
    kept AS (
        UPDATE {limit_keys} AS k SET served_at = s.served_at
        FROM states AS s
        WHERE k.queue = s.queue AND k.key = s.key AND NOT s.forgettable
          AND s.served_at IS NOT NULL
    ),
    pruned AS (
        DELETE FROM {limit_keys} AS k
        USING states AS s
        WHERE k.queue = s.queue AND k.key = s.key AND s.forgettable
        RETURNING k.key
    )
    SELECT (SELECT count(*) FROM gone)::integer + (SELECT count(*) FROM pruned)::integer
    INTO forgotten;
    RETURN NEXT;
END
$function$;
