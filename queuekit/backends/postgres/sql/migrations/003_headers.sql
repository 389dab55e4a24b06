-- queuekit's PostgreSQL schema, version 3: job headers.
--
-- A JSON object of str to str (the enqueuer's trace context, for one), NULL when a job has none;
-- `json` like payload and result (see version 1). A nullable column without a default changes
-- only the catalog: no row is rewritten, so a large table upgrades in place at once.
ALTER TABLE {jobs} ADD COLUMN headers json;
