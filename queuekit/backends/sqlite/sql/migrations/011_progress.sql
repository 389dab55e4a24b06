-- A running job's progress (a fraction from 0 to 1, with a short note) and partial output
-- (JSON text), written by the worker's heartbeat, fenced like the lease. Adding nullable
-- columns rewrites no row.
ALTER TABLE queuekit_jobs ADD COLUMN progress REAL;
ALTER TABLE queuekit_jobs ADD COLUMN progress_note TEXT;
ALTER TABLE queuekit_jobs ADD COLUMN output TEXT;
