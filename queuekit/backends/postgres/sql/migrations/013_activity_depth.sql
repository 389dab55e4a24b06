-- queuekit's PostgreSQL schema, version 13: a queue's depth in its activity minutes.
--
-- `depth` is the queue's ready jobs (claimable, due) counted, up to a cap, by the write that
-- created the minute's row, and by no other; NULL where no sample was taken (rows kept from
-- before this version, or a write whose sample failed). A nullable column without a default
-- changes only the catalog: no row is rewritten.
ALTER TABLE {schema}."{table}_activity" ADD COLUMN depth bigint;
