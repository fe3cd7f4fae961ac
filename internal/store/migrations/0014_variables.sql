-- Variables (issue 17, item 1): at the integration level (environment '')
-- or one environment's (environment = its name). A sensitive value is
-- sealed with the secret box (internal/secret), as integration tokens
-- are; a plain one is stored as is. Deleting the integration deletes its
-- variables; deleting an environment deletes its own (internal/jobs, in
-- the transaction that makes it a tombstone).
CREATE TABLE variables (
    id             {{ID}},
    integration_id BIGINT  NOT NULL REFERENCES integrations (id) ON DELETE CASCADE,
    environment    TEXT    NOT NULL DEFAULT '',
    name           TEXT    NOT NULL,
    value          TEXT    NOT NULL,
    sensitive      BOOLEAN NOT NULL DEFAULT FALSE,
    inheritable    BOOLEAN NOT NULL DEFAULT TRUE,
    visible_build  BOOLEAN NOT NULL DEFAULT TRUE,
    visible_run    BOOLEAN NOT NULL DEFAULT TRUE,
    created_at     BIGINT  NOT NULL,
    updated_at     BIGINT  NOT NULL,
    UNIQUE (integration_id, environment, name)
);
