-- Paused queues: claims skip them (inside the claim statement), enqueueing still works.
CREATE TABLE queuekit_paused (
    queue TEXT PRIMARY KEY CHECK (length(queue) BETWEEN 1 AND 128),
    paused_at REAL NOT NULL
);
