-- `stats` reads counts kept as the jobs change, instead of counting the jobs (issue 20).
--
-- A count is kept per queue, status and minute (minutes since 1970): for a pending or failed
-- job the minute its scheduled_at falls in (so `stats` tells the scheduled from the due
-- without reading them), for a finished one the minute of its finished_at (so it counts the
-- recent outcomes of the success rate), minute 0 for the rest. Minutes no longer needed apart
-- (all due, or out of the success window) are folded into minute 0 (`fold_counts`), so a
-- queue keeps a few rows per status, plus one per minute in which its delayed jobs fall due.
-- One writer at a time: each change is added to its count directly.
CREATE TABLE queuekit_counts (
    queue TEXT NOT NULL,
    status TEXT NOT NULL,
    minute INTEGER NOT NULL,
    n INTEGER NOT NULL,
    PRIMARY KEY (queue, status, minute)
) WITHOUT ROWID;

-- The minute a job is counted in, the one rule the triggers below and the first count share.
ALTER TABLE queuekit_jobs ADD COLUMN count_minute INTEGER GENERATED ALWAYS AS (
    CASE WHEN status IN ('pending', 'failed') THEN CAST(scheduled_at / 60 AS INTEGER)
         WHEN status IN ('completed', 'dead', 'cancelled') THEN CAST(finished_at / 60 AS INTEGER)
         ELSE 0 END
) VIRTUAL;

CREATE TRIGGER queuekit_jobs_count_inserted AFTER INSERT ON queuekit_jobs
BEGIN
    INSERT INTO queuekit_counts (queue, status, minute, n)
    VALUES (NEW.queue, NEW.status, NEW.count_minute, 1)
    ON CONFLICT DO UPDATE SET n = n + 1;
END;

CREATE TRIGGER queuekit_jobs_count_updated
AFTER UPDATE OF queue, status, scheduled_at, finished_at ON queuekit_jobs
WHEN OLD.queue IS NOT NEW.queue OR OLD.status IS NOT NEW.status
     OR OLD.count_minute IS NOT NEW.count_minute
BEGIN
    INSERT INTO queuekit_counts (queue, status, minute, n)
    VALUES (OLD.queue, OLD.status, OLD.count_minute, -1)
    ON CONFLICT DO UPDATE SET n = n - 1;
    INSERT INTO queuekit_counts (queue, status, minute, n)
    VALUES (NEW.queue, NEW.status, NEW.count_minute, 1)
    ON CONFLICT DO UPDATE SET n = n + 1;
END;

CREATE TRIGGER queuekit_jobs_count_deleted AFTER DELETE ON queuekit_jobs
BEGIN
    INSERT INTO queuekit_counts (queue, status, minute, n)
    VALUES (OLD.queue, OLD.status, OLD.count_minute, -1)
    ON CONFLICT DO UPDATE SET n = n - 1;
END;

-- Every minute apart: the first `fold_counts` folds those no longer needed.
INSERT INTO queuekit_counts (queue, status, minute, n)
SELECT queue, status, count_minute, count(*) FROM queuekit_jobs GROUP BY 1, 2, 3;
