-- queuekit's PostgreSQL schema, version 2: paused queues.
--
-- {paused} is the schema-qualified table of paused queue names. The claim and next_due
-- statements skip a queue listed here inside their own statement, so a pause is seen by every
-- claim that starts after it commits, on every host. Enqueueing is not affected.
CREATE TABLE {paused} (
    paused_at timestamptz NOT NULL DEFAULT now(),
    queue text COLLATE "C" NOT NULL,
    CONSTRAINT "{table}_paused_pkey" PRIMARY KEY (queue),
    CONSTRAINT "{table}_paused_queue" CHECK (length(queue) BETWEEN 1 AND 128)
);
