-- queuekit's PostgreSQL schema, version 5: an index by task type.
--
-- Serves `list_jobs(type=...)` newest first and bulk operations by type. Building it reads the
-- whole table once, holding off writes meanwhile (a migration runs in one transaction, so it
-- cannot build concurrently): on a large table, migrate at a quiet moment.
CREATE INDEX "{table}_type" ON {jobs} (type, seq);
