-- Job headers: a JSON object of str to str, NULL when a job has none. Adding a nullable column
-- rewrites no row, so an existing database upgrades in place at once.
ALTER TABLE queuekit_jobs ADD COLUMN headers TEXT;
