-- queuekit's PostgreSQL schema, version 20: a heartbeat changes no indexed column, so it can
-- be a HOT update (issue 20).
--
-- The running jobs were indexed by `lease_expires_at`, which every heartbeat moves: each one
-- wrote a new entry in all five indexes every job is in (664 bytes of WAL per job and
-- heartbeat, in `benchmarks`' count). Indexed by queue instead, a heartbeat can stay on its
-- page with nothing indexed changed (398 bytes), and with room left on each page for it
-- (`fillfactor`, which applies to the pages written from now on), mostly does (262 bytes).
-- The rescuer now reads every running job, as many as the workers run at once, and checks
-- each one's lease, where it read only those run out: a fraction of a millisecond for a
-- thousand. Building the index reads the table once, holding off writes meanwhile: on a large
-- table, migrate at a quiet moment.
DROP INDEX {schema}."{table}_lease";
CREATE INDEX "{table}_running" ON {jobs} (queue) WHERE status = 'running';
ALTER TABLE {jobs} SET (fillfactor = 90);
