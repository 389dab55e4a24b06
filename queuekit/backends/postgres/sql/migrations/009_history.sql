-- queuekit's PostgreSQL schema, version 9: attempt history.
--
-- `history` is a jsonb array of the job's latest ended attempts, oldest first, appended by the
-- statements that end an attempt (`ended_attempt` in queries.sql; the stored form is
-- described in queuekit/backends/history.py); NULL until an attempt ends. jsonb, so appending
-- is an operator, not a parse of the text. A nullable column without a default changes only
-- the catalog: no row is rewritten.
ALTER TABLE {jobs} ADD COLUMN history jsonb;
