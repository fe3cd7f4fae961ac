-- Feedback into GitLab (internal/feedback): what glenv has told GitLab about
-- each environment and each deploy, so that re-running a sync after a crash,
-- a 5xx or a pile-up of updates sends nothing twice.

-- One row per glenv environment: its GitLab environment and merge request
-- note, the environment version last synced, the lease that keeps two syncs
-- of one environment from running at once, and a counter every notification
-- bumps in its own transaction (a sync that ends with the counter moved runs
-- again, so no notification folded into it is lost).
CREATE TABLE feedback_environments (
    environment_id   BIGINT PRIMARY KEY,
    gitlab_env_id    BIGINT NOT NULL DEFAULT 0,
    gitlab_env_name  TEXT   NOT NULL DEFAULT '',
    gitlab_env_url   TEXT   NOT NULL DEFAULT '',
    gitlab_env_state TEXT   NOT NULL DEFAULT '',
    note_id          BIGINT NOT NULL DEFAULT 0,
    note_hash        TEXT   NOT NULL DEFAULT '',
    synced_version   BIGINT NOT NULL DEFAULT 0,
    requested        BIGINT NOT NULL DEFAULT 0,
    lease_owner      TEXT   NOT NULL DEFAULT '',
    lease_until      BIGINT NOT NULL DEFAULT 0,
    created_at       BIGINT NOT NULL DEFAULT 0,
    updated_at       BIGINT NOT NULL DEFAULT 0
);

-- One row per deploy activity: the commit status and deployment GitLab has
-- (status_trying / deployment_trying mark a send whose answer was lost), and
-- the activity state that is fully shown in GitLab (settled).
CREATE TABLE feedback_deploys (
    activity_id       BIGINT  PRIMARY KEY,
    environment_id    BIGINT  NOT NULL,
    status_sent       TEXT    NOT NULL DEFAULT '',
    status_trying     TEXT    NOT NULL DEFAULT '',
    deployment_id     BIGINT  NOT NULL DEFAULT 0,
    deployment_status TEXT    NOT NULL DEFAULT '',
    deployment_trying BOOLEAN NOT NULL DEFAULT FALSE,
    settled           TEXT    NOT NULL DEFAULT '',
    updated_at        BIGINT  NOT NULL DEFAULT 0
);
CREATE INDEX feedback_deploys_environment ON feedback_deploys (environment_id, activity_id);
