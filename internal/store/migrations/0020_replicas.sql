-- Several `glenv serve` replicas on one PostgreSQL (issue 16). Each replica
-- registers itself here and heartbeats; one whose heartbeat stopped is dead
-- and the others take its environments over. address is where the other
-- replicas reach it (--replica-address), so a request for an environment
-- another replica runs is forwarded there. Times are microseconds.
CREATE TABLE replicas (
    id {{ID}},
    address TEXT NOT NULL,
    started_at BIGINT NOT NULL,
    heartbeat_at BIGINT NOT NULL
);
CREATE INDEX replicas_address ON replicas (address);
-- The replica that runs an environment's app with the process runtime (0:
-- none yet, or a runtime where any replica may deploy). Deploy, pause and
-- remove jobs of the environment run on that replica's own River queue.
ALTER TABLE environments ADD COLUMN owner_replica_id BIGINT NOT NULL DEFAULT 0;
