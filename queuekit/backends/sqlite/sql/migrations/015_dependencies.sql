-- Job dependencies (issue 18; the rules are in `Backend`'s docstring, "Dependencies"). A job
-- with parents is stored `waiting` until they finish; the write that ends, replays or deletes a
-- parent decides its dependents in the same statement, by the triggers below. `{now}` is
-- SQLite's clock (queries.py): inside a trigger it is the instant of the statement that fired it.

-- 'waiting' joins the statuses the CHECK allows. SQLite cannot alter a constraint; allowing one
-- more value rewrites no row and no row breaks it, so the table's definition is edited in place
-- (https://sqlite.org/lang_altertable.html#otheralter), and RESET reloads it on this connection.
-- The ALTER TABLE statements that follow change the schema version, so other connections reload
-- it too.
PRAGMA writable_schema = ON;
UPDATE sqlite_master
SET sql = replace(sql, '''dead'', ''cancelled'')', '''dead'', ''cancelled'', ''waiting'')')
WHERE type = 'table' AND name = 'queuekit_jobs';
PRAGMA writable_schema = RESET;

-- `open_parents`: while waiting, how many of its parents have not finished (so a fan-in costs
-- one step per parent that ends, whatever the number of parents). `has_dependents`: 1 once a
-- job was named as a parent; the triggers fire only for those. `cancelled_by`: the parent that
-- cancelled it (a replay of that parent brings it back), NULL on every unfinished job. Adding
-- columns rewrites no row.
ALTER TABLE queuekit_jobs ADD COLUMN workflow_id TEXT;
ALTER TABLE queuekit_jobs ADD COLUMN open_parents INTEGER NOT NULL DEFAULT 0;
ALTER TABLE queuekit_jobs ADD COLUMN has_dependents INTEGER NOT NULL DEFAULT 0;
ALTER TABLE queuekit_jobs ADD COLUMN cancelled_by TEXT;

-- A workflow's jobs, newest first (`list_jobs(workflow_id=...)`); jobs of none stay out.
CREATE INDEX queuekit_jobs_workflow ON queuekit_jobs (workflow_id, seq)
    WHERE workflow_id IS NOT NULL;

-- A waiting job holds its unique key, as every unfinished job does.
DROP INDEX queuekit_jobs_unique;
CREATE UNIQUE INDEX queuekit_jobs_unique ON queuekit_jobs (queue, unique_key)
    WHERE unique_key IS NOT NULL AND status IN ('waiting', 'pending', 'running', 'failed');

-- The edges: a job's parents in the order given. A parent id names the job of that id enqueued
-- before the child (a job deleted and enqueued again later is another job: every query below
-- compares seqs). A child's edges go with it; a deleted parent's stay, so its dependents still
-- show it among their parents.
CREATE TABLE queuekit_jobs_parents (
    child_id TEXT NOT NULL,
    position INTEGER NOT NULL,
    parent_id TEXT NOT NULL,
    on_failure TEXT NOT NULL CHECK (on_failure IN ('cancel', 'run', 'ignore')),
    PRIMARY KEY (child_id, position)
) WITHOUT ROWID;

CREATE INDEX queuekit_jobs_parents_parent ON queuekit_jobs_parents (parent_id, child_id);

-- Deciding the dependents of a job that ended (`outcome`: completed, dead, cancelled) or was
-- deleted unfinished (`outcome` 'deleted'), as a procedure: inserting a row into this view runs
-- the trigger below and stores nothing.
CREATE VIEW queuekit_jobs_ended AS SELECT '' AS id, 0 AS seq, '' AS outcome WHERE 0;

-- One statement decides the whole cascade, so no trigger fires itself and no depth limit
-- applies (CROSS JOIN keeps SQLite's joins in the order written, from the ended jobs out along
-- their edges, whatever it guesses of the tables' sizes): `doomed` is every waiting job a failed
-- parent cancels, directly or through jobs it cancels (edges that say cancel); each gets
-- `cancelled_by` that parent if it is one of its own, else its first such parent by position.
-- Every other waiting job with parents among the ended ones counts them off (`gone`) and becomes
-- pending, due no earlier than now, when none is left. The jobs cancelled here fire no trigger of
-- their own (their `cancelled_by` is set): their dependents are decided here.
CREATE TRIGGER queuekit_jobs_decide INSTEAD OF INSERT ON queuekit_jobs_ended
BEGIN
    UPDATE queuekit_jobs
    SET status = CASE WHEN d.cancelled_by IS NOT NULL THEN 'cancelled'
                      WHEN queuekit_jobs.open_parents <= d.gone THEN 'pending'
                      ELSE queuekit_jobs.status END,
        open_parents = queuekit_jobs.open_parents - d.gone,
        scheduled_at = CASE WHEN d.cancelled_by IS NULL AND queuekit_jobs.open_parents <= d.gone
                            THEN max(queuekit_jobs.scheduled_at, {now})
                            ELSE queuekit_jobs.scheduled_at END,
        finished_at = CASE WHEN d.cancelled_by IS NOT NULL THEN {now}
                           ELSE queuekit_jobs.finished_at END,
        last_error = CASE WHEN d.cancelled_by IS NOT NULL
                          THEN 'parent ' || d.cancelled_by || ' ' || d.outcome
                          ELSE queuekit_jobs.last_error END,
        cancelled_by = d.cancelled_by
    FROM (
        WITH RECURSIVE doomed(id, seq) AS (
            SELECT c.id, c.seq FROM queuekit_jobs_parents AS e
            CROSS JOIN queuekit_jobs AS c ON c.id = e.child_id
            WHERE NEW.outcome <> 'completed' AND e.parent_id = NEW.id AND e.on_failure = 'cancel'
              AND c.status = 'waiting' AND c.seq > NEW.seq
            UNION
            SELECT c.id, c.seq FROM doomed AS p
            CROSS JOIN queuekit_jobs_parents AS e ON e.parent_id = p.id AND e.on_failure = 'cancel'
            CROSS JOIN queuekit_jobs AS c ON c.id = e.child_id
            WHERE c.status = 'waiting' AND c.seq > p.seq
        ),
        ended(id, seq, outcome) AS (
            SELECT NEW.id, NEW.seq, NEW.outcome
            UNION ALL
            SELECT id, seq, 'cancelled' FROM doomed
        )
        SELECT d.id, 0 AS gone, e.parent_id AS cancelled_by,
               CASE WHEN e.parent_id = NEW.id THEN NEW.outcome ELSE 'cancelled' END AS outcome,
               min(CASE WHEN e.parent_id = NEW.id THEN -1 ELSE e.position END)
        FROM doomed AS d
        CROSS JOIN queuekit_jobs_parents AS e ON e.child_id = d.id AND e.on_failure = 'cancel'
        WHERE (e.parent_id = NEW.id AND NEW.seq < d.seq)
           OR (e.parent_id IN (SELECT id FROM doomed)
               AND (SELECT seq FROM queuekit_jobs WHERE id = e.parent_id) < d.seq)
        GROUP BY d.id
        UNION ALL
        SELECT c.id, count(*) AS gone, NULL, NULL, NULL
        FROM ended AS x
        CROSS JOIN queuekit_jobs_parents AS e ON e.parent_id = x.id
        CROSS JOIN queuekit_jobs AS c ON c.id = e.child_id AND c.seq > x.seq
        WHERE c.status = 'waiting' AND c.id NOT IN (SELECT id FROM doomed)
        GROUP BY c.id
    ) AS d
    WHERE queuekit_jobs.id = d.id AND queuekit_jobs.status = 'waiting';
END;

-- A parent enters a terminal state, by any statement (complete, fail, rescue, cancel, expire, a
-- batch, the caller's transaction): its dependents are decided. Jobs without dependents, and
-- those cancelled by a parent (decided with it), fire nothing.
CREATE TRIGGER queuekit_jobs_parent_ended AFTER UPDATE OF status ON queuekit_jobs
WHEN NEW.has_dependents AND NEW.cancelled_by IS NULL
    AND NEW.status IN ('completed', 'dead', 'cancelled')
    AND OLD.status NOT IN ('completed', 'dead', 'cancelled')
BEGIN
    INSERT INTO queuekit_jobs_ended (id, seq, outcome) VALUES (NEW.id, NEW.seq, NEW.status);
END;

-- A parent deleted before it finished is a failed one ('deleted'); pruning deletes finished jobs
-- only, whose dependents were decided when they finished.
CREATE TRIGGER queuekit_jobs_parent_deleted AFTER DELETE ON queuekit_jobs
WHEN OLD.has_dependents AND OLD.status NOT IN ('completed', 'dead', 'cancelled')
BEGIN
    INSERT INTO queuekit_jobs_ended (id, seq, outcome) VALUES (OLD.id, OLD.seq, 'deleted');
END;

CREATE TRIGGER queuekit_jobs_child_deleted AFTER DELETE ON queuekit_jobs
BEGIN
    DELETE FROM queuekit_jobs_parents WHERE child_id = OLD.id;
END;

-- A parent leaves a terminal state (a replay): in one statement, as above. `back` is every job
-- it cancelled, and those they cancelled; of those, `held` stay cancelled: a parent of theirs
-- whose edge says cancel stays dead or cancelled (or is gone), a live job holds their unique key
-- (or an older one of them has the same), or one of `held` is such a parent. The others come
-- back to waiting, counting their unfinished parents afresh (those coming back among them). A
-- held job whose canceller came back names the parent that now holds it. Every waiting job
-- counts the returning parents as unfinished again. Jobs coming back fire no trigger of their
-- own (they become waiting, which only this trigger does): their dependents are decided here.
CREATE TRIGGER queuekit_jobs_parent_reopened AFTER UPDATE OF status ON queuekit_jobs
WHEN NEW.has_dependents AND OLD.status IN ('completed', 'dead', 'cancelled')
    AND NEW.status NOT IN ('completed', 'dead', 'cancelled', 'waiting')
BEGIN
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
            WHERE e.parent_id = NEW.id AND e.on_failure = 'cancel' AND c.status = 'cancelled'
              AND c.cancelled_by = NEW.id AND c.seq > NEW.seq
            UNION
            SELECT c.id, c.seq FROM back AS p
            CROSS JOIN queuekit_jobs_parents AS e ON e.parent_id = p.id AND e.on_failure = 'cancel'
            CROSS JOIN queuekit_jobs AS c ON c.id = e.child_id
            WHERE c.status = 'cancelled' AND c.cancelled_by = p.id AND c.seq > p.seq
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
                SELECT 1 FROM queuekit_jobs AS live
                WHERE live.queue = j.queue AND live.unique_key = j.unique_key
                  AND live.status IN ('waiting', 'pending', 'running', 'failed')
            )) OR b.seq IN (
                SELECT seq FROM (
                    SELECT o.seq, row_number() OVER (
                        PARTITION BY oj.queue, oj.unique_key ORDER BY o.seq
                    ) AS nth
                    FROM back AS o CROSS JOIN queuekit_jobs AS oj ON oj.seq = o.seq
                    WHERE oj.unique_key IS NOT NULL
                )
                WHERE nth > 1
            )
            UNION
            SELECT c.id, c.seq FROM held AS h
            CROSS JOIN queuekit_jobs_parents AS e ON e.parent_id = h.id AND e.on_failure = 'cancel'
            CROSS JOIN back AS c ON c.id = e.child_id
            WHERE c.seq > h.seq
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
        WHERE c.status = 'waiting'
        GROUP BY c.id
    ) AS r
    WHERE queuekit_jobs.id = r.id AND queuekit_jobs.status = r.expected;
END;

-- The decisions above as events (queuekit/events.py), for the process whose write made them
-- to announce: no `Queue` released, cancelled or brought back these jobs, so none announces
-- them. A write that ended, replayed or deleted a job with dependents (its `has_dependents`)
-- takes them (queries.sql `take_decided`); no other job's write adds any. Only the triggers
-- above move a job out of `waiting` into `pending`, or into `cancelled` with `cancelled_by`
-- set (a `cancel` leaves it NULL, and is announced by its `Queue`), or back into `waiting`.
CREATE TABLE queuekit_jobs_decided (
    n INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    queue TEXT NOT NULL,
    job_id TEXT NOT NULL,
    type TEXT NOT NULL,
    at REAL NOT NULL,
    attempt INTEGER NOT NULL,
    error TEXT
);

CREATE TRIGGER queuekit_jobs_decided AFTER UPDATE OF status ON queuekit_jobs
WHEN (OLD.status = 'waiting'
      AND (NEW.status = 'pending' OR (NEW.status = 'cancelled' AND NEW.cancelled_by IS NOT NULL)))
    OR (OLD.status = 'cancelled' AND NEW.status = 'waiting')
BEGIN
    INSERT INTO queuekit_jobs_decided (kind, queue, job_id, type, at, attempt, error)
    VALUES (CASE NEW.status WHEN 'pending' THEN 'enqueued' ELSE NEW.status END,
            NEW.queue, NEW.id, NEW.type, {now}, NEW.attempts,
            CASE WHEN NEW.status = 'cancelled' THEN NEW.last_error END);
END;
