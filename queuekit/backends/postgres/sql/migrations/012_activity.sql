-- queuekit's PostgreSQL schema, version 12: activity by minute (queuekit/activity.py).
--
-- One row per queue and minute of the server's clock: the counts the processes that enqueue
-- and run its jobs add (each at most every few seconds, see `ActivityRecorder`), with the wait
-- and run times as counts per bucket of `queuekit.activity.BUCKET_BOUNDS`. A write forgets
-- its queues' minutes older than the writer's `keep`. Delete and prune never touch it.
CREATE TABLE {schema}."{table}_activity" (
    queue text COLLATE "C" NOT NULL,
    minute timestamptz NOT NULL,
    enqueued bigint NOT NULL,
    completed bigint NOT NULL,
    failed bigint NOT NULL,
    dead bigint NOT NULL,
    wait bigint[] NOT NULL,
    run bigint[] NOT NULL,
    CONSTRAINT "{table}_activity_pkey" PRIMARY KEY (queue, minute)
);
