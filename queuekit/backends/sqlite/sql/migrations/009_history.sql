-- Attempt history: a JSON array of the job's latest ended attempts, oldest first, appended by
-- the statements that end an attempt (`ended_attempt` in queries.sql; the stored form is
-- described in queuekit/backends/history.py). NULL until an attempt ends. Adding a nullable
-- column rewrites no row.
ALTER TABLE queuekit_jobs ADD COLUMN history TEXT;
