-- queuekit's PostgreSQL schema, version 16: unique keys held after the end, debounce keys,
-- batches, and dependents started by a parent's death (issue 18, phase 2; the rules are
-- `Backend`'s, in queuekit/backend.py).
--
-- `unique_states` (NULL, or a comma-joined sorted list such as 'completed,dead') are the
-- finished states in which a job keeps holding its unique key, until `unique_until` (its
-- enqueue plus `unique_for`; NULL: while the row exists). A hold found over is let go by the
-- write that finds it, which sets `unique_states` to NULL: the row leaves the unique index.
-- `debounce_key` is held while the job is unstarted; `debounce_until` (its enqueue plus
-- `debounce_max`) caps its `scheduled_at`. `batch_id` groups a batch's jobs. Nullable columns
-- change only the catalog: no row is rewritten.
ALTER TABLE {jobs}
    ADD COLUMN unique_states text COLLATE "C",
    ADD COLUMN unique_until timestamptz,
    ADD COLUMN debounce_key text COLLATE "C",
    ADD COLUMN debounce_until timestamptz,
    ADD COLUMN batch_id text COLLATE "C";
ALTER TABLE {jobs} ADD CONSTRAINT "{table}_unique_states" CHECK (
    string_to_array(unique_states, ',') <@ ARRAY['completed', 'dead', 'cancelled']::text[]
) NOT VALID;
ALTER TABLE {jobs} ADD CONSTRAINT "{table}_debounce_key_length" CHECK (
    length(debounce_key) BETWEEN 1 AND 512
) NOT VALID;
ALTER TABLE {jobs} ADD CONSTRAINT "{table}_batch_length" CHECK (
    length(batch_id) BETWEEN 1 AND 128
) NOT VALID;

-- The holder of a key: a live job, or a finished one in its `unique_states`. Every statement
-- that looks a holder up repeats this predicate, so that it reads this index. Rebuilding the
-- index reads the table once, holding off writes meanwhile: migrate at a quiet moment.
DROP INDEX {schema}."{table}_unique";
CREATE UNIQUE INDEX "{table}_unique" ON {jobs} (queue, unique_key)
    WHERE unique_key IS NOT NULL
      AND (status IN ('waiting', 'pending', 'running', 'failed')
           OR status = ANY(string_to_array(unique_states, ',')));

-- At most one unstarted job of a queue per debounce key: a claim frees the key.
CREATE UNIQUE INDEX "{table}_debounce" ON {jobs} (queue, debounce_key)
    WHERE debounce_key IS NOT NULL AND status IN ('waiting', 'pending');

-- Serves `list_jobs(search=JobSearch(batch_id=...))`, newest first, and `batch_counts`, which
-- reads only the index (status is included) where the visibility map allows it.
CREATE INDEX "{table}_batch" ON {jobs} (batch_id, seq) INCLUDE (status)
    WHERE batch_id IS NOT NULL;

ALTER TABLE {parents} DROP CONSTRAINT "{table}_on_failure";
ALTER TABLE {parents} ADD CONSTRAINT "{table}_on_failure" CHECK (
    on_failure IN ('cancel', 'run', 'ignore', 'trigger')
) NOT VALID;

-- The enqueue of a call in which a job has a unique or a debounce key: the jobs of the call
-- one by one, in order, as that many enqueues would store them (a later job finds an earlier
-- one of the call holding its key). Each arrives as one element of each array (the columns of
-- the `insert` statement, queries.sql, and the keys' options). Returns a row per job, in
-- order: the job stored, or the holder of its key as this job left it; `o_inserted` whether it
-- is the job stored, `o_changed` whether the row was written (stored, or a holder rewritten).
--
-- A job is inserted with ON CONFLICT on its key's index, which PostgreSQL resolves against
-- concurrent enqueues of the key from any connection: the holder is found and locked (a
-- concurrent insert of it waited for), however many enqueue it at once. The holder is then
-- rewritten (replace, debounce), let go when its hold is over (and the insert tried again), or
-- read back as it is. Jobs without keys go in as the `insert` statement stores them.
CREATE FUNCTION {schema}."{table}_enqueue"(
    p_ids text[], p_queues text[], p_types text[], p_payloads text[], p_priorities smallint[],
    p_max_attempts smallint[], p_delays float8[], p_run_ats timestamptz[], p_headers text[],
    p_limit_keys text[], p_expires_ats timestamptz[], p_expires_ins float8[],
    p_workflow_ids text[], p_batch_ids text[], p_parents integer[], p_has_dependents boolean[],
    p_unique_keys text[], p_unique_states text[], p_unique_fors float8[], p_replace boolean[],
    p_debounce_keys text[], p_debounce_maxes float8[]
)
RETURNS TABLE (o_ord bigint, o_inserted boolean, o_changed boolean, o_job {jobs})
LANGUAGE plpgsql VOLATILE
SET enable_seqscan = off SET plan_cache_mode = force_generic_plan SET jit = off
AS $function$
DECLARE
    -- Every insert draws a seq, conflicting or not: the row returned is the one inserted
    -- exactly when its seq is the last one drawn.
    v_sequence text := pg_get_serial_sequence('{jobs}', 'seq');
    r record;
    v_new {jobs};
    v_requested timestamptz;
    v_found boolean;
    v_bucket integer;
BEGIN
    -- A call with several keys takes them in one order, whatever order its jobs name them in:
    -- first a lock on each of their buckets (one of 64, by hash), in bucket order, so that two
    -- such calls never wait for each other's keys in a circle (a deadlock, which the server
    -- takes a second to find). A call with one key never waits while it holds another. 64
    -- bounds the locks a call takes (PostgreSQL's lock table has room for 64 a transaction).
    IF (SELECT count(DISTINCT (k.queue, k.unique_key, k.debounce_key)) > 1
        FROM unnest(p_queues, p_unique_keys, p_debounce_keys) AS k(queue, unique_key, debounce_key)
        WHERE k.unique_key IS NOT NULL OR k.debounce_key IS NOT NULL) THEN
        FOR v_bucket IN
            SELECT DISTINCT (hashtext(k.queue || '/' || coalesce(k.unique_key, '')
                                      || '/' || coalesce(k.debounce_key, '')) & 63)
            FROM unnest(p_queues, p_unique_keys, p_debounce_keys)
                AS k(queue, unique_key, debounce_key)
            WHERE k.unique_key IS NOT NULL OR k.debounce_key IS NOT NULL
            ORDER BY 1
        LOOP
            PERFORM pg_advisory_xact_lock(hashtext('{jobs}/keys'), v_bucket);
        END LOOP;
    END IF;
    FOR r IN
        SELECT *
        FROM unnest(
            p_ids, p_queues, p_types, p_payloads, p_priorities, p_max_attempts, p_delays,
            p_run_ats, p_headers, p_limit_keys, p_expires_ats, p_expires_ins, p_workflow_ids,
            p_batch_ids, p_parents, p_has_dependents, p_unique_keys, p_unique_states,
            p_unique_fors, p_replace, p_debounce_keys, p_debounce_maxes
        ) WITH ORDINALITY AS i(
            id, queue, type, payload, priority, max_attempts, delay, run_at, headers,
            limit_key, expires_at, expires_in, workflow_id, batch_id, parents, has_dependents,
            unique_key, unique_states, unique_for, on_replace, debounce_key, debounce_max, ord
        )
    LOOP
        v_requested := coalesce(r.run_at, now() + r.delay * interval '1 second');
        v_new := NULL;
        v_new.id := r.id;
        v_new.queue := r.queue;
        v_new.type := r.type;
        v_new.payload := r.payload::json;
        v_new.priority := r.priority;
        v_new.status := CASE WHEN r.parents > 0 THEN 'waiting' ELSE 'pending' END;
        v_new.max_attempts := r.max_attempts;
        v_new.created_at := now();
        v_new.debounce_until := now() + r.debounce_max * interval '1 second';
        v_new.scheduled_at := least(v_requested, v_new.debounce_until);
        v_new.unique_key := r.unique_key;
        v_new.unique_states := r.unique_states;
        v_new.unique_until := now() + r.unique_for * interval '1 second';
        v_new.debounce_key := r.debounce_key;
        v_new.headers := r.headers::json;
        v_new.limit_key := r.limit_key;
        v_new.expires_at := coalesce(r.expires_at, now() + r.expires_in * interval '1 second');
        v_new.workflow_id := r.workflow_id;
        v_new.batch_id := r.batch_id;
        v_new.open_parents := coalesce(r.parents, 0);
        v_new.has_parents := coalesce(r.parents > 0, false);
        v_new.has_dependents := coalesce(r.has_dependents, false);
        o_ord := r.ord;
        IF r.debounce_key IS NOT NULL THEN
            -- The holder is unstarted (the index holds no other): it always takes the payload
            -- and the time asked for, never later than its own cap.
            INSERT INTO {jobs} AS j (
                id, queue, type, payload, priority, status, max_attempts, created_at,
                scheduled_at, headers, limit_key, expires_at, workflow_id, batch_id,
                open_parents, has_parents, has_dependents, debounce_key, debounce_until
            )
            VALUES (
                v_new.id, v_new.queue, v_new.type, v_new.payload, v_new.priority, v_new.status,
                v_new.max_attempts, v_new.created_at, v_new.scheduled_at, v_new.headers,
                v_new.limit_key, v_new.expires_at, v_new.workflow_id, v_new.batch_id,
                v_new.open_parents, v_new.has_parents, v_new.has_dependents, v_new.debounce_key,
                v_new.debounce_until
            )
            ON CONFLICT (queue, debounce_key)
                WHERE debounce_key IS NOT NULL AND status IN ('waiting', 'pending')
                DO UPDATE SET payload = excluded.payload,
                              scheduled_at = least(v_requested, j.debounce_until)
            RETURNING j.* INTO o_job;
            o_inserted := o_job.seq = currval(v_sequence);
            o_changed := true;
            RETURN NEXT;
            CONTINUE;
        END IF;
        -- A job without a key never conflicts; a holder whose hold is over is let go, and the
        -- job tried again (once more at most, unless another enqueue takes the key meanwhile).
        LOOP
            INSERT INTO {jobs} AS j (
                id, queue, type, payload, priority, status, max_attempts, created_at,
                scheduled_at, headers, limit_key, expires_at, workflow_id, batch_id,
                open_parents, has_parents, has_dependents, unique_key, unique_states,
                unique_until
            )
            VALUES (
                v_new.id, v_new.queue, v_new.type, v_new.payload, v_new.priority, v_new.status,
                v_new.max_attempts, v_new.created_at, v_new.scheduled_at, v_new.headers,
                v_new.limit_key, v_new.expires_at, v_new.workflow_id, v_new.batch_id,
                v_new.open_parents, v_new.has_parents, v_new.has_dependents, v_new.unique_key,
                v_new.unique_states, v_new.unique_until
            )
            ON CONFLICT (queue, unique_key)
                WHERE unique_key IS NOT NULL
                  AND (status IN ('waiting', 'pending', 'running', 'failed')
                       OR status = ANY(string_to_array(unique_states, ',')))
                DO UPDATE SET
                    unique_states = CASE WHEN j.status IN ('completed', 'dead', 'cancelled')
                                         THEN NULL ELSE j.unique_states END,
                    payload = CASE WHEN j.status IN ('completed', 'dead', 'cancelled')
                                   THEN j.payload ELSE excluded.payload END,
                    scheduled_at = CASE WHEN j.status IN ('completed', 'dead', 'cancelled')
                                        THEN j.scheduled_at ELSE excluded.scheduled_at END
                WHERE (j.status IN ('completed', 'dead', 'cancelled')
                       AND j.unique_until <= now())
                   OR (r.on_replace AND j.status IN ('waiting', 'pending', 'failed'))
            RETURNING j.* INTO o_job;
            v_found := FOUND;
            IF NOT v_found THEN
                -- The holder was left as it is, locked by the statement above: read it.
                SELECT * INTO o_job FROM {jobs} AS j
                WHERE j.queue = r.queue AND j.unique_key = r.unique_key
                  AND j.unique_key IS NOT NULL
                  AND (j.status IN ('waiting', 'pending', 'running', 'failed')
                       OR j.status = ANY(string_to_array(j.unique_states, ',')));
                EXIT WHEN FOUND;
                CONTINUE;  -- gone meanwhile (deleted): the key is free
            END IF;
            -- A holder let go is a finished row: the job goes in now.
            EXIT WHEN o_job.status NOT IN ('completed', 'dead', 'cancelled');
        END LOOP;
        o_inserted := v_found AND o_job.seq = currval(v_sequence);
        o_changed := v_found;
        RETURN NEXT;
    END LOOP;
END
$function$;

-- Rule 3 of migration 15, with dependents started by a parent's death: a waiting dependent
-- whose edges say `trigger` (all of them do, or none) is released at once when one of those
-- parents ends dead, whatever else it waits for; the others (completed, cancelled, deleted)
-- count as finished, and once none is left unfinished it is cancelled ("no parent died"),
-- `cancelled_by` the parent whose end decided it (its replay brings the dependent back), its
-- own dependents decided by that cancel as by any other. The rest is migration 15's.
CREATE OR REPLACE FUNCTION {schema}."{table}_parents_end"(p_ids text[], p_outcomes text[])
RETURNS void LANGUAGE plpgsql VOLATILE
SET enable_seqscan = off SET plan_cache_mode = force_generic_plan SET jit = off
SET queuekit.deciding = 'on'
AS $function$
DECLARE
    v_ids text[] := p_ids;
    v_outcomes text[] := p_outcomes;
    v_cancelled text[];         -- dependents cancelled in this round
    v_queues text[];            -- and released: their queues and limit keys ('' for none)
    v_keys text[];
    v_events text[];
BEGIN
    LOOP
        WITH hits AS MATERIALIZED (
            SELECT e.child_id, count(*)::integer AS ended,
                   (array_agg(e.parent_id ORDER BY e.position)
                        FILTER (WHERE e.on_failure = 'cancel' AND f.outcome <> 'completed'))[1]
                       AS cause,
                   (array_agg(f.outcome ORDER BY e.position)
                        FILTER (WHERE e.on_failure = 'cancel' AND f.outcome <> 'completed'))[1]
                       AS outcome,
                   bool_or(e.on_failure = 'trigger') AS trigger,
                   bool_or(e.on_failure = 'trigger' AND f.outcome = 'dead') AS died,
                   (array_agg(e.parent_id ORDER BY e.position))[1] AS first
            FROM unnest(v_ids, v_outcomes) AS f(id, outcome)
            JOIN {parents} AS e ON e.parent_id = f.id
            GROUP BY e.child_id
        ),
        changed AS (
            UPDATE {jobs} AS j
            SET (status, open_parents, finished_at, last_error, cancelled_by, scheduled_at) = (
                SELECT CASE d.verdict WHEN 'wait' THEN 'waiting' WHEN 'release' THEN 'pending'
                                      ELSE 'cancelled' END,
                       CASE WHEN d.verdict = 'cause' THEN j.open_parents
                            ELSE greatest(j.open_parents - h.ended, 0) END,
                       CASE WHEN d.verdict IN ('cause', 'none died') THEN now() END,
                       CASE d.verdict WHEN 'cause' THEN 'parent ' || h.cause || ' ' || h.outcome
                                      WHEN 'none died' THEN 'no parent died'
                                      ELSE j.last_error END,
                       CASE d.verdict WHEN 'cause' THEN h.cause
                                      WHEN 'none died' THEN h.first END,
                       CASE WHEN d.verdict = 'release' THEN greatest(j.scheduled_at, now())
                            ELSE j.scheduled_at END
                FROM (SELECT CASE WHEN h.cause IS NOT NULL THEN 'cause'
                                  WHEN h.died THEN 'release'
                                  WHEN j.open_parents > h.ended THEN 'wait'
                                  WHEN h.trigger THEN 'none died'
                                  ELSE 'release' END AS verdict) AS d
            )
            FROM hits AS h
            WHERE j.id = ANY(ARRAY(SELECT child_id FROM hits)) AND j.id = h.child_id
              AND (SELECT j.status = 'waiting')
            RETURNING j.id, j.queue, j.limit_key, j.status, j.has_dependents, j.type, j.attempts,
                      j.last_error
        )
        SELECT coalesce(array_agg(id) FILTER (WHERE status = 'cancelled' AND has_dependents), '{}'),
               coalesce(array_agg(id) FILTER (WHERE status = 'cancelled'), '{}'),
               coalesce(array_agg(queue) FILTER (WHERE status = 'pending'), '{}'),
               coalesce(array_agg(coalesce(limit_key, '')) FILTER (WHERE status = 'pending'), '{}'),
               coalesce(array_agg(jsonb_strip_nulls(jsonb_build_object(
                   'kind', CASE WHEN status = 'pending' THEN 'enqueued' ELSE 'cancelled' END,
                   'queue', queue, 'job_id', id, 'type', type, 'at', now(), 'attempt', attempts,
                   'note', CASE WHEN status = 'pending' THEN 'released' END,
                   'error', CASE WHEN status = 'cancelled' THEN last_error END))::text)
                   FILTER (WHERE status <> 'waiting'), '{}')
        INTO v_ids, v_cancelled, v_queues, v_keys, v_events
        FROM changed;
        IF cardinality(v_events) > 0 THEN
            PERFORM {schema}."{table}_announce"(v_events);
        END IF;
        IF cardinality(v_queues) > 0 THEN
            INSERT INTO {limit_ready} (queue, key, served_at)
            SELECT k.queue, k.key, coalesce(s.served_at, 0)
            FROM (SELECT DISTINCT queue, key FROM unnest(v_queues, v_keys) AS r(queue, key)) AS k
            CROSS JOIN LATERAL (
                SELECT pg_advisory_xact_lock_shared(
                    hashtextextended('{jobs}/' || k.queue || '/' || k.key, 0))
            ) AS l
            LEFT JOIN {limit_keys} AS s ON s.queue = k.queue AND s.key = k.key
            ON CONFLICT (queue, key) DO NOTHING;
            PERFORM pg_notify('{notify_channel}', 'w:' || q.queue)
            FROM (SELECT DISTINCT queue FROM unnest(v_queues) AS r(queue)) AS q;
        END IF;
        IF cardinality(v_cancelled) > 0 THEN
            PERFORM pg_notify('{notify_channel}',
                CASE WHEN octet_length(array_to_string(v_cancelled, ' ')) < 7000
                     THEN 'o:' || array_to_string(v_cancelled, ' ') ELSE 'o' END);
        END IF;
        EXIT WHEN cardinality(v_ids) = 0;
        v_outcomes := array_fill('cancelled'::text, ARRAY[cardinality(v_ids)]);
    END LOOP;
END
$function$;

-- Rule 4 of migration 15, with version 2 keys: a dependent cancelled by one of `p_ids` stays
-- cancelled while another job holds its unique key (live, or finished in its states with the
-- hold not over) or its debounce key (unstarted); a holder whose hold is over is let go first,
-- as an enqueue lets it go. A dependent whose edges say `trigger`, cancelled because no parent
-- died, is brought back by any of its parents (each one's replay makes that cancel wrong), and
-- has no cause to stay: it waits again, for the parents not finished.
CREATE OR REPLACE FUNCTION {schema}."{table}_parents_back"(p_ids text[])
RETURNS void LANGUAGE plpgsql VOLATILE
SET enable_seqscan = off SET plan_cache_mode = force_generic_plan SET jit = off
SET queuekit.deciding = 'on'
AS $function$
DECLARE
    v_ids text[] := p_ids;
    v_seqs bigint[];
    v_events text[];
BEGIN
    WHILE cardinality(v_ids) > 0 LOOP
        WITH hits AS MATERIALIZED (
            SELECT e.child_id, count(*)::integer AS back
            FROM unnest(v_ids) AS f(id)
            JOIN {parents} AS e ON e.parent_id = f.id
            GROUP BY e.child_id
        )
        UPDATE {jobs} AS j
        SET open_parents = j.open_parents + h.back
        FROM hits AS h
        WHERE j.id = ANY(ARRAY(SELECT child_id FROM hits)) AND j.id = h.child_id
          AND (SELECT j.status = 'waiting');

        SELECT coalesce(array_agg(c.seq), '{}') INTO v_seqs
        FROM (
            SELECT j.seq
            FROM unnest(v_ids) AS f(id)
            JOIN {parents} AS e ON e.parent_id = f.id
            JOIN {jobs} AS j ON j.id = e.child_id
            WHERE (SELECT j.status = 'cancelled')
              AND (j.cancelled_by = f.id
                   OR (e.on_failure = 'trigger' AND j.cancelled_by IS NOT NULL))
            FOR NO KEY UPDATE OF j
        ) AS c;

        UPDATE {jobs} AS h
        SET unique_states = NULL
        FROM {jobs} AS c
        WHERE c.seq = ANY(v_seqs) AND c.unique_key IS NOT NULL
          AND h.queue = c.queue AND h.unique_key = c.unique_key AND h.unique_key IS NOT NULL
          AND h.seq <> c.seq AND h.status IN ('completed', 'dead', 'cancelled')
          AND h.status = ANY(string_to_array(h.unique_states, ',')) AND h.unique_until <= now();

        WITH decided AS MATERIALIZED (
            SELECT c.seq,
                   (SELECT e.parent_id FROM {parents} AS e
                    LEFT JOIN {jobs} AS p ON p.id = e.parent_id
                    WHERE e.child_id = c.id AND e.on_failure = 'cancel'
                      AND (p.id IS NULL OR (SELECT p.status IN ('dead', 'cancelled')))
                    ORDER BY e.position LIMIT 1) AS cause,
                   (SELECT count(*) FROM {parents} AS e
                    JOIN {jobs} AS p ON p.id = e.parent_id
                    WHERE e.child_id = c.id
                      AND (SELECT p.status NOT IN ('completed', 'dead', 'cancelled')))::integer
                       AS open
            FROM {jobs} AS c
            WHERE c.seq = ANY(v_seqs)
        ),
        back AS (
            UPDATE {jobs} AS j
            SET status = CASE WHEN d.cause IS NULL THEN 'waiting' ELSE 'cancelled' END,
                finished_at = CASE WHEN d.cause IS NULL THEN NULL ELSE j.finished_at END,
                last_error = CASE WHEN d.cause IS NULL THEN NULL ELSE j.last_error END,
                cancelled_by = d.cause,
                open_parents = CASE WHEN d.cause IS NULL THEN d.open ELSE j.open_parents END
            FROM decided AS d
            WHERE j.seq = ANY(ARRAY(SELECT seq FROM decided)) AND j.seq = d.seq
              AND (SELECT j.status = 'cancelled')
              AND (j.unique_key IS NULL OR NOT EXISTS (
                  SELECT 1 FROM {jobs} AS o
                  WHERE o.queue = j.queue AND o.unique_key = j.unique_key AND o.seq <> j.seq
                    AND (o.status IN ('waiting', 'pending', 'running', 'failed')
                         OR o.status = ANY(string_to_array(o.unique_states, ',')))))
              AND (j.debounce_key IS NULL OR NOT EXISTS (
                  SELECT 1 FROM {jobs} AS o
                  WHERE o.queue = j.queue AND o.debounce_key = j.debounce_key
                    AND o.status IN ('waiting', 'pending')))
            RETURNING j.id, j.status, j.has_dependents, j.queue, j.type, j.attempts
        )
        SELECT coalesce(array_agg(id) FILTER (WHERE status = 'waiting' AND has_dependents), '{}'),
               coalesce(array_agg(jsonb_build_object(
                   'kind', 'waiting', 'queue', queue, 'job_id', id, 'type', type, 'at', now(),
                   'attempt', attempts)::text) FILTER (WHERE status = 'waiting'), '{}')
        INTO v_ids, v_events
        FROM back;
        IF cardinality(v_events) > 0 THEN
            PERFORM {schema}."{table}_announce"(v_events);
        END IF;
    END LOOP;
END
$function$;
