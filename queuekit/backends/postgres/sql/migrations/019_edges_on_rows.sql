-- queuekit's PostgreSQL schema, version 19: the edges of a workflow enqueued in one call are
-- kept on its jobs' own rows, not as a row of {parents} each (with two index entries): a
-- 10,000-job fan-out/fan-in wrote 19,996 of those, which took a quarter of the time of the
-- whole enqueue of as many independent jobs (issue 18).
--
-- Every job with parents keeps them on its row (`parent_ids` and `parent_policies`, each a
-- list joined by spaces, in the order given: a parent's position is its place there; text
-- that is split where it is read, not arrays built for every job an enqueue stores): a job's
-- parents are all named by its own enqueue, and never change. A parent keeps the dependents
-- its own enqueue call stored with it in `dependents` (text, one
-- "<child id>,<position>,<on_failure>" per edge, joined by spaces; ids hold neither), and the
-- jobs of that call share a `call_id`. The edges to a parent stored
-- before the call (and every edge of a call in which a job has a unique or debounce key, whose
-- children may be answered by a holder instead of stored) stay rows of {parents}, which a
-- parent gains one at a time: rewriting a list on its row would make a parent with many
-- dependents, enqueued one call at a time, quadratic. `{table}_dependents` reads both.
--
-- A dependent deleted leaves its entry in its parent's `dependents`; `call_id` tells it from a
-- later job that reuses its id.
ALTER TABLE {jobs}
    ADD COLUMN parent_ids text COLLATE "C",
    ADD COLUMN parent_policies text COLLATE "C",
    ADD COLUMN dependents text COLLATE "C",
    ADD COLUMN call_id text COLLATE "C";

UPDATE {jobs} AS j
SET parent_ids = e.ids, parent_policies = e.policies
FROM (
    SELECT child_id, string_agg(parent_id, ' ' ORDER BY position) AS ids,
           string_agg(on_failure, ' ' ORDER BY position) AS policies
    FROM {parents}
    GROUP BY child_id
) AS e
WHERE j.id = e.child_id;

-- The dependents of jobs `p_ids` that exist, with the edge's position among the child's
-- parents and its on_failure: the rows of {parents}, and the entries of each job's own
-- `dependents` whose child is still the job of its call. Inlined where it is used.
CREATE FUNCTION {schema}."{table}_dependents"(p_ids text[])
RETURNS TABLE (parent_id text, child_id text, child_seq bigint, parent_position integer,
               on_failure text)
LANGUAGE sql STABLE AS $function$
    SELECT e.parent_id, e.child_id, c.seq, e.position, e.on_failure
    FROM {parents} AS e
    JOIN {jobs} AS c ON c.id = e.child_id
    WHERE e.parent_id = ANY(p_ids)
    UNION ALL
    SELECT p.id, c.id, c.seq, split_part(d.edge, ',', 2)::integer, split_part(d.edge, ',', 3)
    FROM {jobs} AS p
    CROSS JOIN LATERAL unnest(string_to_array(p.dependents, ' ')) AS d(edge)
    JOIN {jobs} AS c ON c.id = split_part(d.edge, ',', 1) AND c.call_id = p.call_id
    WHERE p.id = ANY(p_ids) AND p.dependents IS NOT NULL
$function$;

-- Rule 3 as migration 16 has it, the dependents read by `{table}_dependents`.
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
                   (array_agg(e.parent_id ORDER BY e.parent_position)
                        FILTER (WHERE e.on_failure = 'cancel' AND f.outcome <> 'completed'))[1]
                       AS cause,
                   (array_agg(f.outcome ORDER BY e.parent_position)
                        FILTER (WHERE e.on_failure = 'cancel' AND f.outcome <> 'completed'))[1]
                       AS outcome,
                   bool_or(e.on_failure = 'trigger') AS trigger,
                   bool_or(e.on_failure = 'trigger' AND f.outcome = 'dead') AS died,
                   (array_agg(e.parent_id ORDER BY e.parent_position))[1] AS first
            FROM unnest(v_ids, v_outcomes) AS f(id, outcome)
            JOIN {schema}."{table}_dependents"(v_ids) AS e ON e.parent_id = f.id
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

-- Rule 4 as migration 16 has it, the dependents read by `{table}_dependents`, and each one's
-- parents from its row.
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
            FROM {schema}."{table}_dependents"(v_ids) AS e
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
            FROM {schema}."{table}_dependents"(v_ids) AS e
            JOIN {jobs} AS j ON j.seq = e.child_seq
            WHERE (SELECT j.status = 'cancelled')
              AND (j.cancelled_by = e.parent_id
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
                   (SELECT e.parent_id
                    FROM unnest(string_to_array(c.parent_ids, ' '),
                                string_to_array(c.parent_policies, ' ')) WITH ORDINALITY
                        AS e(parent_id, on_failure, position)
                    LEFT JOIN {jobs} AS p ON p.id = e.parent_id
                    WHERE e.on_failure = 'cancel'
                      AND (p.id IS NULL OR (SELECT p.status IN ('dead', 'cancelled')))
                    ORDER BY e.position LIMIT 1) AS cause,
                   (SELECT count(*)
                    FROM unnest(string_to_array(c.parent_ids, ' ')) AS e(parent_id)
                    JOIN {jobs} AS p ON p.id = e.parent_id
                    WHERE (SELECT p.status NOT IN ('completed', 'dead', 'cancelled')))::integer
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

-- Migration 15's trigger, for a parent deleted unfinished: its row, and the dependents on it,
-- are gone by the time `{table}_parents_end` reads them, so those of its call are first
-- written as rows of {parents} (as a parent's rows stay when it goes).
CREATE OR REPLACE FUNCTION {schema}."{table}_parent_moved"()
RETURNS trigger LANGUAGE plpgsql VOLATILE AS $function$
BEGIN
    IF TG_OP = 'DELETE' THEN
        IF OLD.has_parents THEN
            DELETE FROM {parents} WHERE child_id = OLD.id;
        END IF;
        IF OLD.has_dependents AND OLD.status NOT IN ('completed', 'dead', 'cancelled') THEN
            INSERT INTO {parents} (child_id, position, parent_id, on_failure)
            SELECT c.id, split_part(d.edge, ',', 2)::integer, OLD.id, split_part(d.edge, ',', 3)
            FROM unnest(string_to_array(OLD.dependents, ' ')) AS d(edge)
            JOIN {jobs} AS c ON c.id = split_part(d.edge, ',', 1) AND c.call_id = OLD.call_id
            ON CONFLICT DO NOTHING;
            PERFORM {schema}."{table}_parents_end"(ARRAY[OLD.id], ARRAY['deleted']);
        END IF;
    ELSIF NEW.status IN ('completed', 'dead', 'cancelled') THEN
        PERFORM {schema}."{table}_parents_end"(ARRAY[NEW.id], ARRAY[NEW.status::text]);
    ELSE
        PERFORM {schema}."{table}_parents_back"(ARRAY[NEW.id]);
    END IF;
    RETURN NULL;
END
$function$;
