-- queuekit's PostgreSQL schema, version 7: the keys waiting for a turn, in turn order.
--
-- {limit_ready} holds a row for each (queue, limit key) with unfinished jobs (pending, failed
-- or running), whatever the queue's limits (so setting limits needs no rebuild of it), with
-- the key's `served_at` (0 when never served): from here on a keyed key's turn is kept here,
-- and in {limit_keys} only while the key has no row here (a claim removing the row copies it
-- there, an enqueue adding it back reads it from there); key '' when the queue has keyless
-- ones (the queue's own turn stays in {limit_keys}), so a limited claim reads keyless jobs
-- (through the claim index, which holds the keyed ones too) only when there may be some. The
-- limited claim reads it by `{table}_ready_turn`, in the order `flow.choose` gives keys their
-- turns, (served_at, key), and stops once it has read enough keys: a claim costs about as many
-- index reads as the keys it takes (plus those blocked by their own running jobs or held),
-- however many keys wait. Enqueue (and replay) add a key's row, taking a shared advisory
-- lock on the key first; a claim removes the row of a key left with no unfinished job only
-- under that lock taken exclusively, then checking again, so a row is never removed while a
-- job of its key is being added (see `limited_forget` in queries.sql).
CREATE TABLE {limit_ready} (
    served_at double precision NOT NULL DEFAULT 0,
    queue text COLLATE "C" NOT NULL,
    key text COLLATE "C" NOT NULL,
    CONSTRAINT "{table}_ready_pkey" PRIMARY KEY (queue, key)
);
CREATE INDEX "{table}_ready_turn" ON {limit_ready} (queue, served_at, key);

INSERT INTO {limit_ready} (queue, key, served_at)
SELECT k.queue, k.limit_key, coalesce(s.served_at, 0)
FROM (
    SELECT DISTINCT queue, coalesce(limit_key, '') AS limit_key FROM {jobs}
    WHERE status IN ('pending', 'running', 'failed')
) AS k
LEFT JOIN {limit_keys} AS s ON s.queue = k.queue AND s.key = k.limit_key AND k.limit_key <> '';

-- `version` counts the claims that changed the queue's state: a claim that read without the
-- lock claims only if it is still the version it read (see `limited_claim`). A constant
-- default changes only the catalog.
ALTER TABLE {limits} ADD COLUMN version bigint NOT NULL DEFAULT 0;
