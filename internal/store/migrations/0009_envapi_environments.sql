-- What the GitLab-compatible Environments API (internal/envapi) keeps about
-- an environment beyond glenv's own columns: GitLab's auto_stop_setting
-- (always / with_action, echoed on create and update) and auto_delete_at,
-- the time DELETE …/environments/review_apps scheduled its deletion for
-- (0: not scheduled). environment_created_at is the created_at of the
-- environment the row was written for: a deleted environment revived under
-- the same id (same integration and name) gets a new created_at, so a stale
-- row, above all a pending deletion, never applies to it. An environment
-- without a current row has GitLab's defaults. Rows of deleted environments
-- are removed by envapi's periodic job.
CREATE TABLE envapi_environments (
    environment_id         BIGINT PRIMARY KEY,
    environment_created_at BIGINT NOT NULL,
    auto_stop_setting      TEXT   NOT NULL DEFAULT 'always',
    auto_delete_at         BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX envapi_environments_auto_delete ON envapi_environments (auto_delete_at);
