-- queuekit's PostgreSQL schema, version 21: the jobs that end together decide their
-- dependents in time that grows with their number, not with its square.
--
-- `{table}_parents_end` found each ended job's outcome by joining its ids with the edges read
-- for them. Its plans are generic, estimated at a few rows, so that join ran as a nested loop:
-- for 5,000 members of a batch, every one of their 15,000 edges to the batch's callbacks was
-- compared with every id, 9 s in all. The outcomes are now a JSON object by id, and each edge
-- looks its parent up there. With it, `cancel` decides the dependents of the jobs it cancels
-- in one call, as `finish` does (queries.sql), instead of one trigger call per job, each of
-- which rewrote the callbacks shared by a batch: cancelling a batch of 100,000 pending jobs
-- took a minute.
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
    v_outcome_of jsonb;         -- each of v_ids's outcome, by id
BEGIN
    LOOP
        v_outcome_of := jsonb_object(v_ids, v_outcomes);
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
            FROM {schema}."{table}_dependents"(v_ids) AS e
            CROSS JOIN LATERAL (SELECT v_outcome_of ->> e.parent_id AS outcome) AS f
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
