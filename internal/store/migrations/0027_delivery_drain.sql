-- Issue 15: one drain job processes every accepted delivery in id order
-- (internal/jobs/drain.go) instead of one job per group commit, so it reads
-- "the next accepted deliveries by id". (status, id) gives that order on
-- PostgreSQL without sorting the backlog (on SQLite the old (status) index
-- already ended in the rowid); it replaces (status), which it leads, so an
-- insert still updates as many indexes as before.
CREATE INDEX deliveries_status_id ON deliveries (status, id);
DROP INDEX IF EXISTS deliveries_status;
-- attempts counts how often processing a delivery failed for a reason of
-- its own; after a few it is marked failed, so one delivery that can never
-- be processed does not hold back every later one for ever.
ALTER TABLE deliveries ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
