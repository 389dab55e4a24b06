-- Activity by minute (queuekit/activity.py): one row per queue and minute of SQLite's clock
-- (`minute` is its start, in epoch seconds), the counts the processes that enqueue and run its
-- jobs add, wait and run times as JSON arrays of counts per bucket of
-- `queuekit.activity.BUCKET_BOUNDS`. A write forgets its queues' minutes older than its `keep`.
CREATE TABLE queuekit_activity (
    queue TEXT NOT NULL,
    minute REAL NOT NULL,
    enqueued INTEGER NOT NULL,
    completed INTEGER NOT NULL,
    failed INTEGER NOT NULL,
    dead INTEGER NOT NULL,
    wait TEXT NOT NULL,
    run TEXT NOT NULL,
    PRIMARY KEY (queue, minute)
) WITHOUT ROWID;
