-- Flow control without reading every ready job: the keys of each queue that have claimable
-- (pending or failed) jobs, with when each was last served, so a limited claim reads keys in
-- turn order from an index and stops once it has enough. Triggers keep it in step with the
-- jobs in the same statement as every write, and only for keyed jobs (WHEN limit_key IS NOT
-- NULL), so keyless jobs and unlimited queues pay nothing for it.
CREATE TABLE queuekit_limit_ready (
    queue TEXT NOT NULL,
    key TEXT NOT NULL,
    served_at REAL NOT NULL DEFAULT 0,
    PRIMARY KEY (queue, key)
) WITHOUT ROWID;

-- Keys in the order `flow.choose` gives them turns: least recently served first, then by key.
CREATE INDEX queuekit_limit_ready_turn ON queuekit_limit_ready (queue, served_at, key);

-- A key's claimable jobs in claim order: its first few at once, and whether it has any left.
CREATE INDEX queuekit_jobs_key_claim
    ON queuekit_jobs (queue, limit_key, priority DESC, scheduled_at, seq)
    WHERE limit_key IS NOT NULL AND status IN ('pending', 'failed');

-- A limited queue's keyless claimable jobs in claim order, without reading past its keyed ones.
CREATE INDEX queuekit_jobs_keyless_claim ON queuekit_jobs (queue, priority DESC, scheduled_at, seq)
    WHERE limit_key IS NULL AND status IN ('pending', 'failed');

INSERT INTO queuekit_limit_ready (queue, key, served_at)
SELECT DISTINCT j.queue, j.limit_key, coalesce((
    SELECT s.served_at FROM queuekit_limit_keys AS s WHERE s.queue = j.queue AND s.key = j.limit_key
), 0)
FROM queuekit_jobs AS j
WHERE j.limit_key IS NOT NULL AND j.status IN ('pending', 'failed');

-- A keyed job became claimable (enqueued, retried, snoozed, rescued, replayed): its key is ready.
CREATE TRIGGER queuekit_jobs_ready_enqueued AFTER INSERT ON queuekit_jobs
WHEN NEW.limit_key IS NOT NULL AND NEW.status IN ('pending', 'failed')
BEGIN
    INSERT INTO queuekit_limit_ready (queue, key, served_at)
    SELECT NEW.queue, NEW.limit_key, coalesce((
        SELECT served_at FROM queuekit_limit_keys WHERE queue = NEW.queue AND key = NEW.limit_key
    ), 0)
    WHERE NOT EXISTS (
        SELECT 1 FROM queuekit_limit_ready WHERE queue = NEW.queue AND key = NEW.limit_key
    );
END;

CREATE TRIGGER queuekit_jobs_ready_again AFTER UPDATE OF status ON queuekit_jobs
WHEN NEW.limit_key IS NOT NULL AND NEW.status IN ('pending', 'failed')
    AND OLD.status NOT IN ('pending', 'failed')
BEGIN
    INSERT INTO queuekit_limit_ready (queue, key, served_at)
    SELECT NEW.queue, NEW.limit_key, coalesce((
        SELECT served_at FROM queuekit_limit_keys WHERE queue = NEW.queue AND key = NEW.limit_key
    ), 0)
    WHERE NOT EXISTS (
        SELECT 1 FROM queuekit_limit_ready WHERE queue = NEW.queue AND key = NEW.limit_key
    );
END;

-- A keyed job stopped being claimable (claimed, cancelled) or went: its key stays ready only
-- while it has another claimable job.
CREATE TRIGGER queuekit_jobs_ready_taken AFTER UPDATE OF status ON queuekit_jobs
WHEN OLD.limit_key IS NOT NULL AND OLD.status IN ('pending', 'failed')
    AND NEW.status NOT IN ('pending', 'failed')
BEGIN
    DELETE FROM queuekit_limit_ready
    WHERE queue = OLD.queue AND key = OLD.limit_key AND NOT EXISTS (
        SELECT 1 FROM queuekit_jobs
        WHERE queue = OLD.queue AND limit_key = OLD.limit_key AND limit_key IS NOT NULL
          AND status IN ('pending', 'failed')
    );
END;

CREATE TRIGGER queuekit_jobs_ready_deleted AFTER DELETE ON queuekit_jobs
WHEN OLD.limit_key IS NOT NULL AND OLD.status IN ('pending', 'failed')
BEGIN
    DELETE FROM queuekit_limit_ready
    WHERE queue = OLD.queue AND key = OLD.limit_key AND NOT EXISTS (
        SELECT 1 FROM queuekit_jobs
        WHERE queue = OLD.queue AND limit_key = OLD.limit_key AND limit_key IS NOT NULL
          AND status IN ('pending', 'failed')
    );
END;

-- A key's turn moves with its state row's served_at (written by the claim that served it).
CREATE TRIGGER queuekit_limit_keys_served AFTER INSERT ON queuekit_limit_keys
WHEN NEW.served_at != 0
BEGIN
    UPDATE queuekit_limit_ready SET served_at = NEW.served_at
    WHERE queue = NEW.queue AND key = NEW.key;
END;

CREATE TRIGGER queuekit_limit_keys_served_again AFTER UPDATE OF served_at ON queuekit_limit_keys
WHEN NEW.served_at != OLD.served_at
BEGIN
    UPDATE queuekit_limit_ready SET served_at = NEW.served_at
    WHERE queue = NEW.queue AND key = NEW.key;
END;
