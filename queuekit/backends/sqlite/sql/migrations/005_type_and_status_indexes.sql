-- Serves listing by task type, newest first (`list_jobs(type=...)`), and bulk operations by type.
CREATE INDEX queuekit_jobs_type ON queuekit_jobs (type, seq);

-- Serves bulk operations over every queue (`replay_all(status="dead")`...) a bounded batch at a
-- time, and listing by status alone, newest first, without a sort.
CREATE INDEX queuekit_jobs_status ON queuekit_jobs (status, seq);
