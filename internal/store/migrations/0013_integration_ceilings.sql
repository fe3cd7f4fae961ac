-- Integration-wide ceilings (issue 12): the most an environment of the
-- integration may ask for in its .glenv.yml limits and services.postgresql
-- connection_limit. 0 = the server's ceiling (--environment-max-*,
-- --services-database-connection-limit). Memory and disk in bytes, CPU in
-- thousandths of a CPU (integers in both dialects).
ALTER TABLE integrations ADD COLUMN environment_max_memory BIGINT NOT NULL DEFAULT 0;
ALTER TABLE integrations ADD COLUMN environment_max_processes BIGINT NOT NULL DEFAULT 0;
ALTER TABLE integrations ADD COLUMN environment_max_millicpu BIGINT NOT NULL DEFAULT 0;
ALTER TABLE integrations ADD COLUMN environment_max_disk BIGINT NOT NULL DEFAULT 0;
ALTER TABLE integrations ADD COLUMN services_database_connection_limit BIGINT NOT NULL DEFAULT 0;
