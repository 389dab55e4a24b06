-- A queue's depth in its activity minutes: its ready jobs (claimable, due) counted, up to a cap,
-- by the write that created the minute's row, and by no other; NULL where no sample was taken
-- (rows kept from before this version).
ALTER TABLE queuekit_activity ADD COLUMN depth INTEGER;
