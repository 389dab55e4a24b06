-- queuekit's PostgreSQL schema, version 15: dependencies between jobs (workflows, issue 18).
--
-- A job with parents is stored `waiting` until they finish (the rules are `Backend`'s, in
-- queuekit/backend.py). Its parents are rows of {parents}, in the order given; `open_parents`
-- counts those not finished yet while it waits, so a parent's end costs one update of each of
-- its dependents, however many parents they have. `has_dependents` and `has_parents` say
-- whether the job has rows there at all: the triggers below fire only on rows that have, so a
-- job outside any workflow pays for none of this. `cancelled_by` names the parent whose end
-- cancelled the job (its replay brings the job back). `workflow_id` groups a workflow's jobs.
-- Nullable columns, and NOT NULL ones with a constant default, change only the catalog: no
-- row is rewritten. NOT VALID skips a scan for checks every existing row meets.
ALTER TABLE {jobs}
    ADD COLUMN workflow_id text COLLATE "C",
    ADD COLUMN cancelled_by text COLLATE "C",
    ADD COLUMN open_parents integer NOT NULL DEFAULT 0,
    ADD COLUMN has_dependents boolean NOT NULL DEFAULT false,
    ADD COLUMN has_parents boolean NOT NULL DEFAULT false;
ALTER TABLE {jobs} ADD CONSTRAINT "{table}_wf_length" CHECK (
    length(workflow_id) BETWEEN 1 AND 128
) NOT VALID;
ALTER TABLE {jobs} DROP CONSTRAINT "{table}_status";
ALTER TABLE {jobs} ADD CONSTRAINT "{table}_status" CHECK (
    status IN ('waiting', 'pending', 'running', 'completed', 'failed', 'dead', 'cancelled')
) NOT VALID;

-- A waiting job is live: it holds its unique key (two waiting jobs of one key would both be
-- released, and the second release would fail its parent's finish). Rebuilding the index
-- reads the table once, holding off writes meanwhile: on a large table, migrate at a quiet
-- moment. Claims, limits and expiry leave `waiting` out on purpose: a waiting job is not
-- claimable, does not count for a key's limits, and expires only once pending.
DROP INDEX {schema}."{table}_unique";
CREATE UNIQUE INDEX "{table}_unique" ON {jobs} (queue, unique_key)
    WHERE unique_key IS NOT NULL AND status IN ('waiting', 'pending', 'running', 'failed');

-- Serves `list_jobs(search=JobSearch(workflow_id=...))`, newest first; jobs outside any
-- workflow are not in it.
CREATE INDEX "{table}_workflow" ON {jobs} (workflow_id, seq) WHERE workflow_id IS NOT NULL;

-- The edges: child `child_id` waits for `parent_id` (its `position`-th parent), and
-- `on_failure` says what the child does if that parent ends dead or cancelled, or is deleted
-- unfinished. A child's rows go with it (the delete trigger); a parent's stay when it goes
-- (its dependents still name it). `{table}_dependents` finds a parent's dependents.
CREATE TABLE {parents} (
    position integer NOT NULL,
    child_id text COLLATE "C" NOT NULL,
    parent_id text COLLATE "C" NOT NULL,
    on_failure text COLLATE "C" NOT NULL,
    CONSTRAINT "{table}_parents_pkey" PRIMARY KEY (child_id, position),
    CONSTRAINT "{table}_on_failure" CHECK (on_failure IN ('cancel', 'run', 'ignore'))
);
CREATE INDEX "{table}_dependents" ON {parents} (parent_id, child_id);

-- The events of the dependents the functions below decide, `p_events` (each an `Event` in
-- its JSON form), sent on the events channel as `publish_events` sends a process's: chunks
-- `{"n":..., "events":[...]}` under NOTIFY's 8000-byte limit (7951 bytes of events, as
-- postgres/events.py's NOTIFY_BYTES). No `Queue` made these changes, so none announces them.
-- A random `n` keeps two chunks of one transaction apart (PostgreSQL folds identical ones).
CREATE FUNCTION {schema}."{table}_announce"(p_events text[])
RETURNS void LANGUAGE plpgsql VOLATILE AS $function$
DECLARE
    v_serial text := 'd' || (random() * 1e15)::bigint;
    v_chunk integer := 0;
    v_first integer := 1;
    v_bytes integer := 0;
BEGIN
    FOR i IN 1 .. cardinality(p_events) + 1 LOOP
        IF i > cardinality(p_events)
           OR (i > v_first AND v_bytes + octet_length(p_events[i]) + 1 > 7951) THEN
            PERFORM pg_notify('{events_channel}', format('{"n":"%s.%s","events":[%s]}',
                v_serial, v_chunk, array_to_string(p_events[v_first:i - 1], ',')));
            v_chunk := v_chunk + 1;
            v_first := i;
            v_bytes := 0;
        END IF;
        v_bytes := v_bytes + octet_length(p_events[i]) + 1;
    END LOOP;
END
$function$;

-- Rule 3: jobs `p_ids` have just ended (`p_outcomes`: completed, dead, cancelled, or deleted
-- when deleted unfinished). Each of their waiting dependents is cancelled if one of them
-- failed (dead, cancelled, deleted) through an edge that says cancel (the first such edge by
-- position names the cause), else counts them as finished, and is released (`pending`, due
-- at its own time or now, whichever is later) once none of its parents is left unfinished.
-- The cancelled ones end too: their dependents are decided the same way, level by level (a
-- loop, not a recursion, so a chain of any length is fine). While it runs, the trigger is
-- off (`queuekit.deciding`, set for the call alone): this loop decides every level itself.
-- Released jobs wake their queue's workers and get their key's row in {limit_ready} (a
-- limited claim may have dropped it while they waited, see migration 7; under the same
-- shared lock as `add_ready_keys`); cancelled ones send their outcome as `cancel` does. Both
-- are announced (`enqueued` "released", `cancelled` with their last_error). The
-- other settings are those of queuekit's sessions (connections.py), which a transaction-mode
-- PgBouncer does not carry: every read here is an index lookup, whatever the statistics say.
CREATE FUNCTION {schema}."{table}_parents_end"(p_ids text[], p_outcomes text[])
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
                       AS outcome
            FROM unnest(v_ids, v_outcomes) AS f(id, outcome)
            JOIN {parents} AS e ON e.parent_id = f.id
            GROUP BY e.child_id
        ),
        changed AS (
            UPDATE {jobs} AS j
            SET status = CASE WHEN h.cause IS NOT NULL THEN 'cancelled'
                              WHEN j.open_parents <= h.ended THEN 'pending'
                              ELSE 'waiting' END,
                open_parents = CASE WHEN h.cause IS NOT NULL THEN j.open_parents
                                    ELSE greatest(j.open_parents - h.ended, 0) END,
                finished_at = CASE WHEN h.cause IS NOT NULL THEN now() END,
                last_error = CASE WHEN h.cause IS NOT NULL
                                  THEN 'parent ' || h.cause || ' ' || h.outcome
                                  ELSE j.last_error END,
                cancelled_by = h.cause,
                scheduled_at = CASE WHEN h.cause IS NULL AND j.open_parents <= h.ended
                                    THEN greatest(j.scheduled_at, now())
                                    ELSE j.scheduled_at END
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

-- Rule 4: jobs `p_ids` have just left a terminal state (a replay, or a dependent brought
-- back). Their waiting dependents count them as unfinished again; each dependent one of them
-- cancelled comes back to `waiting`, its count of unfinished parents taken afresh, unless
-- another parent with an edge that says cancel has failed (dead, cancelled, or gone: then it
-- stays cancelled, by that one) or a live job holds its unique key; those that come back
-- bring theirs back in turn, and are announced (`waiting`). The count comes first: a
-- dependent brought back in this round already counts this round's jobs as unfinished.
CREATE FUNCTION {schema}."{table}_parents_back"(p_ids text[])
RETURNS void LANGUAGE plpgsql VOLATILE
SET enable_seqscan = off SET plan_cache_mode = force_generic_plan SET jit = off
SET queuekit.deciding = 'on'
AS $function$
DECLARE
    v_ids text[] := p_ids;
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

        WITH cancelled AS MATERIALIZED (
            SELECT j.seq, j.id
            FROM unnest(v_ids) AS f(id)
            JOIN {parents} AS e ON e.parent_id = f.id
            JOIN {jobs} AS j ON j.id = e.child_id
            WHERE (SELECT j.status = 'cancelled') AND j.cancelled_by = f.id
            FOR NO KEY UPDATE OF j
        ),
        decided AS MATERIALIZED (
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
            FROM cancelled AS c
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
                  SELECT 1 FROM {jobs} AS live
                  WHERE live.queue = j.queue AND live.unique_key = j.unique_key
                    AND live.status IN ('waiting', 'pending', 'running', 'failed')))
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

-- Every write that moves a job with dependents into or out of a terminal state (complete,
-- the batched finish, fail, rescue, cancel, expire, replay, their batches, a caller's
-- transaction) or deletes one unfinished decides its dependents in the same transaction,
-- without any of those statements knowing: these triggers fire only for such rows (their
-- WHEN is checked on the row, before any function is called), and not for the rows the two
-- functions above change themselves. Deleting a job with parents removes its edges.
CREATE FUNCTION {schema}."{table}_parent_moved"()
RETURNS trigger LANGUAGE plpgsql VOLATILE AS $function$
BEGIN
    IF TG_OP = 'DELETE' THEN
        IF OLD.has_parents THEN
            DELETE FROM {parents} WHERE child_id = OLD.id;
        END IF;
        IF OLD.has_dependents AND OLD.status NOT IN ('completed', 'dead', 'cancelled') THEN
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

CREATE TRIGGER "{table}_parent_moved" AFTER UPDATE OF status ON {jobs}
    FOR EACH ROW
    WHEN (NEW.has_dependents
          AND (OLD.status IN ('completed', 'dead', 'cancelled'))
              <> (NEW.status IN ('completed', 'dead', 'cancelled'))
          AND current_setting('queuekit.deciding', true) IS DISTINCT FROM 'on')
    EXECUTE FUNCTION {schema}."{table}_parent_moved"();

CREATE TRIGGER "{table}_parent_gone" AFTER DELETE ON {jobs}
    FOR EACH ROW
    WHEN (OLD.has_parents
          OR (OLD.has_dependents AND OLD.status NOT IN ('completed', 'dead', 'cancelled')))
    EXECUTE FUNCTION {schema}."{table}_parent_moved"();
