-- Idle pause (issue 17): an integration's --pause-after (seconds, 0 = off)
-- and, per environment, when glenv's proxy last forwarded a request that
-- counts (not a bot's nor a health check's), in microseconds. The proxy
-- keeps the exact time in memory and writes it here at most once a minute
-- per environment, so the idle job survives restarts and replicas.
ALTER TABLE integrations ADD COLUMN pause_after_seconds BIGINT NOT NULL DEFAULT 0;
ALTER TABLE environments ADD COLUMN last_request_at BIGINT NOT NULL DEFAULT 0;
