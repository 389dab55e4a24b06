-- queuekit's PostgreSQL schema, version 11: a running job's progress and partial output.
--
-- Written by the worker's heartbeat, fenced on the lease token like the lease it renews:
-- `progress` a fraction from 0 to 1 (double precision: the reported float, exactly), with a
-- short note; `output` partial output, `json` like payload and result (its text, exactly).
-- Nullable columns without a default change only the catalog: no row is rewritten.
ALTER TABLE {jobs} ADD COLUMN progress double precision;
ALTER TABLE {jobs} ADD COLUMN progress_note text;
ALTER TABLE {jobs} ADD COLUMN output json;
