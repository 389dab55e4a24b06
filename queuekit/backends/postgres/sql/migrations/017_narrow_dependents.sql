-- queuekit's PostgreSQL schema, version 17: the index by which a parent's end finds its
-- dependents holds the parent's id alone. Every statement that reads it (a parent's end, a
-- replay, `get`) reads the edge rows themselves as well, so the child's id beside it only
-- made each edge's entry twice as wide: enqueueing a 10,000-job fan-out/fan-in writes 19,996
-- of them.
CREATE INDEX "{table}_dependents_by_parent" ON {parents} (parent_id);
DROP INDEX {schema}."{table}_dependents";
ALTER INDEX {schema}."{table}_dependents_by_parent" RENAME TO "{table}_dependents";
