-- Unique keys held after the end, debounce keys, batches and TRIGGER edges (issue 18, phase 2;
-- the rules are in `Backend`'s docstring, "Unique keys" and "Batches").

-- 'trigger' joins the policies the edges' CHECK allows, edited in place as migration 15 edited
-- the jobs' statuses (no row is rewritten, none breaks it); the ALTER TABLE statements below
-- change the schema version, so other connections reload it.
PRAGMA writable_schema = ON;
UPDATE sqlite_master
SET sql = replace(sql, '''ignore'')', '''ignore'', ''trigger'')')
WHERE type = 'table' AND name = 'queuekit_jobs_parents';
PRAGMA writable_schema = RESET;

-- `unique_states`: the finished states in which the job keeps its unique key, comma-joined and
-- sorted ('completed,dead'), NULL for none; set NULL once its hold is over and an enqueue or a
-- replay meets it (so it leaves the unique index). `unique_until`: when that hold ends (NULL:
-- while the row exists). `debounce_until`: the latest a debounced job may be scheduled for.
ALTER TABLE queuekit_jobs ADD COLUMN unique_states TEXT;
ALTER TABLE queuekit_jobs ADD COLUMN unique_until REAL;
ALTER TABLE queuekit_jobs ADD COLUMN debounce_key TEXT;
ALTER TABLE queuekit_jobs ADD COLUMN debounce_until REAL;
ALTER TABLE queuekit_jobs ADD COLUMN batch_id TEXT;

-- The job holding each (queue, unique key): a live one, or one finished in its own
-- unique_states (whether its period is over is a matter of the clock, which an index cannot
-- read: a holder whose hold is over is let go by the write that meets it). Every statement
-- looking for a holder repeats this predicate, so SQLite reads it from this index.
DROP INDEX queuekit_jobs_unique;
CREATE UNIQUE INDEX queuekit_jobs_unique ON queuekit_jobs (queue, unique_key)
    WHERE unique_key IS NOT NULL
      AND (status IN ('waiting', 'pending', 'running', 'failed')
           OR instr(',' || unique_states || ',', ',' || status || ',') > 0);

-- The unstarted job holding each (queue, debounce key): claiming it frees the key.
CREATE UNIQUE INDEX queuekit_jobs_debounce ON queuekit_jobs (queue, debounce_key)
    WHERE debounce_key IS NOT NULL AND status IN ('waiting', 'pending');

-- A batch's jobs, newest first (`list_jobs(batch_id=...)`, `batch_counts`); others stay out.
CREATE INDEX queuekit_jobs_batch ON queuekit_jobs (batch_id, seq) WHERE batch_id IS NOT NULL;

-- Migration 15's decision, with TRIGGER edges: a parent that ends dead releases its waiting
-- TRIGGER dependents at once (pending, due no earlier than now); one that ends otherwise (or is
-- deleted) counts off, and a TRIGGER dependent with no parent left unfinished is cancelled ("no
-- parent died", `cancelled_by` that parent). `ending` is every waiting job that ends in this
-- statement: those a failed parent cancels (edges that say cancel, as before) and the TRIGGER
-- dependents whose one unfinished parent is the ended job or one of `ending`, and theirs in
-- turn. A recursive select cannot count, so a TRIGGER dependent whose several unfinished
-- parents all end here is cancelled by the count below, and its own dependents are decided
-- after this statement (`settle`, at the end of this file). Every other waiting job with parents among the ended ones counts them off and becomes
-- pending, due no earlier than now, when none is left.
DROP TRIGGER queuekit_jobs_decide;
CREATE TRIGGER queuekit_jobs_decide INSTEAD OF INSERT ON queuekit_jobs_ended
BEGIN
    UPDATE queuekit_jobs
    SET status = CASE WHEN d.cancelled_by IS NOT NULL THEN 'cancelled'
                      WHEN d.released OR queuekit_jobs.open_parents <= d.gone THEN 'pending'
                      ELSE queuekit_jobs.status END,
        open_parents = queuekit_jobs.open_parents - d.gone,
        scheduled_at = CASE WHEN d.cancelled_by IS NULL
                             AND (d.released OR queuekit_jobs.open_parents <= d.gone)
                            THEN max(queuekit_jobs.scheduled_at, {now})
                            ELSE queuekit_jobs.scheduled_at END,
        finished_at = CASE WHEN d.cancelled_by IS NOT NULL THEN {now}
                           ELSE queuekit_jobs.finished_at END,
        last_error = CASE WHEN d.cancelled_by IS NOT NULL THEN d.error
                          ELSE queuekit_jobs.last_error END,
        cancelled_by = d.cancelled_by
    FROM (
        WITH RECURSIVE ending(id, seq) AS (
            SELECT c.id, c.seq FROM queuekit_jobs_parents AS e
            CROSS JOIN queuekit_jobs AS c ON c.id = e.child_id
            WHERE e.parent_id = NEW.id AND c.status = 'waiting' AND c.seq > NEW.seq
              AND CASE e.on_failure WHEN 'cancel' THEN NEW.outcome <> 'completed'
                                    WHEN 'trigger' THEN NEW.outcome <> 'dead'
                                                        AND c.open_parents = 1
                                    ELSE 0 END
            UNION
            SELECT c.id, c.seq FROM ending AS p
            CROSS JOIN queuekit_jobs_parents AS e
                ON e.parent_id = p.id AND e.on_failure IN ('cancel', 'trigger')
            CROSS JOIN queuekit_jobs AS c ON c.id = e.child_id
            WHERE c.status = 'waiting' AND c.seq > p.seq
              AND (e.on_failure = 'cancel' OR c.open_parents = 1)
        ),
        ended(id, seq) AS (
            SELECT NEW.id, NEW.seq
            UNION ALL
            SELECT id, seq FROM ending
        )
        SELECT d.id, 0 AS gone, 0 AS released, e.parent_id AS cancelled_by,
               CASE WHEN e.on_failure = 'trigger' THEN 'no parent died'
                    ELSE 'parent ' || e.parent_id || ' '
                         || CASE WHEN e.parent_id = NEW.id THEN NEW.outcome ELSE 'cancelled' END
               END AS error,
               min(CASE WHEN e.parent_id = NEW.id THEN -1 ELSE e.position END)
        FROM ending AS d
        CROSS JOIN queuekit_jobs_parents AS e
            ON e.child_id = d.id AND e.on_failure IN ('cancel', 'trigger')
        WHERE (e.parent_id = NEW.id AND NEW.seq < d.seq
               AND (e.on_failure = 'trigger' OR NEW.outcome <> 'completed'))
           OR (e.parent_id IN (SELECT id FROM ending)
               AND (SELECT seq FROM queuekit_jobs WHERE id = e.parent_id) < d.seq)
        GROUP BY d.id
        UNION ALL
        SELECT c.id, count(*) AS gone,
               sum(e.on_failure = 'trigger' AND x.id = NEW.id AND NEW.outcome = 'dead') > 0,
               CASE WHEN e.on_failure = 'trigger' AND c.open_parents <= count(*)
                         AND NOT sum(x.id = NEW.id AND NEW.outcome = 'dead')
                    THEN e.parent_id END,
               'no parent died',
               min(CASE WHEN x.id = NEW.id THEN -1 ELSE e.position END)
        FROM ended AS x
        CROSS JOIN queuekit_jobs_parents AS e ON e.parent_id = x.id
        CROSS JOIN queuekit_jobs AS c ON c.id = e.child_id AND c.seq > x.seq
        WHERE c.status = 'waiting' AND c.id NOT IN (SELECT id FROM ending)
        GROUP BY c.id
    ) AS d
    WHERE queuekit_jobs.id = d.id AND queuekit_jobs.status = 'waiting';
END;

-- Migration 15's replay, with TRIGGER edges and the new holds, as a procedure (like
-- queuekit_jobs_ended), so the write that takes the decisions can run it again: inserting
-- (id, seq, again) into this view runs the trigger below for a job that came back.
CREATE VIEW queuekit_jobs_returned AS SELECT '' AS id, 0 AS seq, 0 AS again WHERE 0;

-- First, the finished holders whose hold is over of the keys of `back` are let go, as an
-- enqueue lets them go (else the unique index would refuse one of `back` coming back). `back`
-- also takes every TRIGGER dependent of the returning job cancelled because none of its
-- parents died, whichever parent cancelled it (this one may yet die), and those of `back` with
-- no other parent (they come back with it, or are held with it). One with several parents is
-- not taken there (it comes back if any of them does, which a recursive select cannot tell):
-- each job brought back to waiting is run through this again (`again`) by the write that takes
-- the decisions (queries.sql `take_decided`), for its TRIGGER dependents alone, until none is
-- left. `held`
-- keep a key another job holds: a live one or one finished in its unique_states whose hold is
-- not over, or an unstarted one holding their debounce key.
CREATE TRIGGER queuekit_jobs_reopen INSTEAD OF INSERT ON queuekit_jobs_returned
BEGIN
    UPDATE queuekit_jobs SET unique_states = NULL
    WHERE seq IN (
        WITH RECURSIVE back(id, seq) AS (
            SELECT c.id, c.seq FROM queuekit_jobs_parents AS e
            CROSS JOIN queuekit_jobs AS c ON c.id = e.child_id
            WHERE e.parent_id = NEW.id AND c.status = 'cancelled' AND c.seq > NEW.seq
              AND ((e.on_failure = 'cancel' AND c.cancelled_by = NEW.id AND NOT NEW.again)
                   OR (e.on_failure = 'trigger' AND c.cancelled_by IS NOT NULL))
            UNION
            SELECT c.id, c.seq FROM back AS p
            CROSS JOIN queuekit_jobs_parents AS e
                ON e.parent_id = p.id AND e.on_failure IN ('cancel', 'trigger')
            CROSS JOIN queuekit_jobs AS c ON c.id = e.child_id
            WHERE c.status = 'cancelled' AND c.seq > p.seq
              AND CASE e.on_failure
                      WHEN 'cancel' THEN c.cancelled_by = p.id
                      ELSE c.cancelled_by IS NOT NULL AND NOT EXISTS (
                          SELECT 1 FROM queuekit_jobs_parents AS o
                          WHERE o.child_id = c.id AND o.position > 0
                      )
                  END
        )
        SELECT h.seq FROM back AS b
        CROSS JOIN queuekit_jobs AS j ON j.seq = b.seq
        CROSS JOIN queuekit_jobs AS h ON h.queue = j.queue AND h.unique_key = j.unique_key
        WHERE h.seq <> j.seq AND h.status IN ('completed', 'dead', 'cancelled')
          AND instr(',' || h.unique_states || ',', ',' || h.status || ',') > 0
          AND h.unique_until <= {now}
    );
    UPDATE queuekit_jobs
    SET status = CASE WHEN r.open IS NOT NULL THEN 'waiting' ELSE queuekit_jobs.status END,
        open_parents = coalesce(r.open, queuekit_jobs.open_parents + r.returned),
        finished_at = CASE WHEN r.open IS NULL THEN queuekit_jobs.finished_at END,
        last_error = CASE WHEN r.open IS NOT NULL THEN NULL
                          WHEN r.blocker IS NOT NULL THEN 'parent ' || r.blocker || ' ' || r.outcome
                          ELSE queuekit_jobs.last_error END,
        cancelled_by = CASE WHEN r.open IS NULL
                            THEN coalesce(r.blocker, queuekit_jobs.cancelled_by) END
    FROM (
        WITH RECURSIVE back(id, seq) AS (
            SELECT c.id, c.seq FROM queuekit_jobs_parents AS e
            CROSS JOIN queuekit_jobs AS c ON c.id = e.child_id
            WHERE e.parent_id = NEW.id AND c.status = 'cancelled' AND c.seq > NEW.seq
              AND ((e.on_failure = 'cancel' AND c.cancelled_by = NEW.id AND NOT NEW.again)
                   OR (e.on_failure = 'trigger' AND c.cancelled_by IS NOT NULL))
            UNION
            SELECT c.id, c.seq FROM back AS p
            CROSS JOIN queuekit_jobs_parents AS e
                ON e.parent_id = p.id AND e.on_failure IN ('cancel', 'trigger')
            CROSS JOIN queuekit_jobs AS c ON c.id = e.child_id
            WHERE c.status = 'cancelled' AND c.seq > p.seq
              AND CASE e.on_failure
                      WHEN 'cancel' THEN c.cancelled_by = p.id
                      ELSE c.cancelled_by IS NOT NULL AND NOT EXISTS (
                          SELECT 1 FROM queuekit_jobs_parents AS o
                          WHERE o.child_id = c.id AND o.position > 0
                      )
                  END
        ),
        held(id, seq) AS (
            SELECT b.id, b.seq FROM back AS b CROSS JOIN queuekit_jobs AS j ON j.seq = b.seq
            WHERE EXISTS (
                SELECT 1 FROM queuekit_jobs_parents AS e
                LEFT JOIN queuekit_jobs AS p ON p.id = e.parent_id AND p.seq < b.seq
                WHERE e.child_id = b.id AND e.on_failure = 'cancel'
                  AND (p.id IS NULL OR (p.status IN ('dead', 'cancelled')
                                        AND p.id NOT IN (SELECT id FROM back)))
            ) OR (j.unique_key IS NOT NULL AND EXISTS (
                SELECT 1 FROM queuekit_jobs AS h
                WHERE h.queue = j.queue AND h.unique_key = j.unique_key AND h.seq <> j.seq
                  AND (h.status IN ('waiting', 'pending', 'running', 'failed')
                       OR instr(',' || h.unique_states || ',', ',' || h.status || ',') > 0)
                  AND (h.status IN ('waiting', 'pending', 'running', 'failed')
                       OR h.unique_until IS NULL OR h.unique_until > {now})
            )) OR (j.debounce_key IS NOT NULL AND EXISTS (
                SELECT 1 FROM queuekit_jobs AS h
                WHERE h.queue = j.queue AND h.debounce_key = j.debounce_key
                  AND h.status IN ('waiting', 'pending')
            )) OR b.seq IN (
                SELECT seq FROM (
                    SELECT o.seq, row_number() OVER (
                        PARTITION BY oj.queue, oj.unique_key, oj.debounce_key ORDER BY o.seq
                    ) AS nth
                    FROM back AS o CROSS JOIN queuekit_jobs AS oj ON oj.seq = o.seq
                    WHERE oj.unique_key IS NOT NULL OR oj.debounce_key IS NOT NULL
                )
                WHERE nth > 1
            )
            UNION
            SELECT c.id, c.seq FROM held AS h
            CROSS JOIN queuekit_jobs_parents AS e
                ON e.parent_id = h.id AND e.on_failure IN ('cancel', 'trigger')
            CROSS JOIN back AS c ON c.id = e.child_id
            WHERE c.seq > h.seq AND (e.on_failure = 'cancel' OR NOT EXISTS (
                SELECT 1 FROM queuekit_jobs_parents AS o WHERE o.child_id = c.id AND o.position > 0
            ))
        ),
        restored(id, seq) AS (SELECT id, seq FROM back EXCEPT SELECT id, seq FROM held),
        returned(id, seq) AS (
            SELECT NEW.id, NEW.seq
            UNION ALL
            SELECT id, seq FROM restored
        )
        SELECT r.id, 'cancelled' AS expected, 0 AS returned, NULL AS blocker, NULL AS outcome,
               (
                   SELECT count(*) FROM queuekit_jobs_parents AS e
                   CROSS JOIN queuekit_jobs AS p ON p.id = e.parent_id AND p.seq < r.seq
                   WHERE e.child_id = r.id
                     AND (p.status NOT IN ('completed', 'dead', 'cancelled')
                          OR p.id IN (SELECT id FROM restored))
               ) AS open,
               NULL
        FROM restored AS r
        UNION ALL
        SELECT h.id, 'cancelled', 0, e.parent_id, coalesce(p.status, 'deleted'), NULL,
               min(e.position)
        FROM held AS h
        CROSS JOIN queuekit_jobs AS j ON j.seq = h.seq
        CROSS JOIN queuekit_jobs_parents AS e ON e.child_id = h.id AND e.on_failure = 'cancel'
        LEFT JOIN queuekit_jobs AS p ON p.id = e.parent_id AND p.seq < h.seq
        WHERE j.cancelled_by IN (SELECT id FROM returned)
          AND (p.id IS NULL OR (p.status IN ('dead', 'cancelled')
                                AND p.id NOT IN (SELECT id FROM restored)))
        GROUP BY h.id
        UNION ALL
        SELECT c.id, 'waiting', count(*), NULL, NULL, NULL, NULL
        FROM returned AS x
        CROSS JOIN queuekit_jobs_parents AS e ON e.parent_id = x.id
        CROSS JOIN queuekit_jobs AS c ON c.id = e.child_id AND c.seq > x.seq
        WHERE c.status = 'waiting' AND NOT (NEW.again AND x.seq = NEW.seq)
        GROUP BY c.id
    ) AS r
    WHERE queuekit_jobs.id = r.id AND queuekit_jobs.status = r.expected;
END;

-- A parent leaves a terminal state (a replay): the procedure above, for it.
DROP TRIGGER queuekit_jobs_parent_reopened;
CREATE TRIGGER queuekit_jobs_parent_reopened AFTER UPDATE OF status ON queuekit_jobs
WHEN NEW.has_dependents AND OLD.status IN ('completed', 'dead', 'cancelled')
    AND NEW.status NOT IN ('completed', 'dead', 'cancelled', 'waiting')
BEGIN
    INSERT INTO queuekit_jobs_returned (id, seq, again) VALUES (NEW.id, NEW.seq, 0);
END;

-- A TRIGGER dependent cancelled by the count above (its several unfinished parents all ended in
-- one statement) still has its own dependents to decide: its decision is marked `settle`, and
-- the write that takes the decisions (queries.sql `take_decided`, in the write's transaction)
-- decides them by `settle`, as if that job had just ended, until none is left.
-- Those cancelled by `ending`, and every other decision, are settled already (settle 0).
ALTER TABLE queuekit_jobs_decided ADD COLUMN settle INTEGER NOT NULL DEFAULT 0;

DROP TRIGGER queuekit_jobs_decided;
CREATE TRIGGER queuekit_jobs_decided AFTER UPDATE OF status ON queuekit_jobs
WHEN (OLD.status = 'waiting'
      AND (NEW.status = 'pending' OR (NEW.status = 'cancelled' AND NEW.cancelled_by IS NOT NULL)))
    OR (OLD.status = 'cancelled' AND NEW.status = 'waiting')
BEGIN
    INSERT INTO queuekit_jobs_decided (kind, queue, job_id, type, at, attempt, error, settle)
    VALUES (CASE NEW.status WHEN 'pending' THEN 'enqueued' ELSE NEW.status END,
            NEW.queue, NEW.id, NEW.type, {now}, NEW.attempts,
            CASE WHEN NEW.status = 'cancelled' THEN NEW.last_error END,
            NEW.status = 'cancelled' AND NEW.last_error = 'no parent died'
                AND NEW.open_parents <= 0 AND NEW.has_dependents);
END;
