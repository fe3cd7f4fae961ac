-- glenv's schema. {{ID}} is the one dialect difference: an auto-increment
-- primary key (INTEGER PRIMARY KEY on SQLite, an identity column on PostgreSQL).
-- Times are BIGINT microseconds since the Unix epoch on both databases.

CREATE TABLE integrations (
    id                    {{ID}},
    name                  TEXT    NOT NULL UNIQUE,
    type                  TEXT    NOT NULL,
    base_url              TEXT    NOT NULL,
    user_facing_url       TEXT    NOT NULL,
    gitlab_project        TEXT    NOT NULL,
    project_id            BIGINT  NOT NULL,
    project_path          TEXT    NOT NULL,
    default_branch        TEXT    NOT NULL,
    token_enc             TEXT    NOT NULL,
    webhook_secret_enc    TEXT    NOT NULL,
    space                 TEXT    NOT NULL,
    labels                TEXT    NOT NULL,
    description           TEXT    NOT NULL,
    fetch_branches        BOOLEAN NOT NULL,
    prune_branches        BOOLEAN NOT NULL,
    build_merge_requests  BOOLEAN NOT NULL,
    build_draft_merge_requests BOOLEAN NOT NULL,
    merge_requests_clone_parent_data BOOLEAN NOT NULL,
    build_tags            TEXT    NOT NULL,
    build_forks           BOOLEAN NOT NULL,
    hook_id               BIGINT  NOT NULL DEFAULT 0,
    token_expires_at      TEXT    NOT NULL DEFAULT '',
    created_at            BIGINT  NOT NULL,
    updated_at            BIGINT  NOT NULL
);
CREATE INDEX integrations_project ON integrations (project_id);

CREATE TABLE environments (
    id               {{ID}},
    integration_id   BIGINT REFERENCES integrations (id) ON DELETE SET NULL,
    integration_name TEXT    NOT NULL,
    project_id       BIGINT  NOT NULL,
    name             TEXT    NOT NULL,
    slug             TEXT    NOT NULL,
    host             TEXT    NOT NULL,
    kind             TEXT    NOT NULL,
    ref              TEXT    NOT NULL,
    parent           TEXT    NOT NULL,
    head_sha         TEXT    NOT NULL,
    deployed_sha     TEXT    NOT NULL,
    state            TEXT    NOT NULL,
    tier             TEXT    NOT NULL,
    external_url     TEXT    NOT NULL,
    description      TEXT    NOT NULL,
    mr_iid           BIGINT  NOT NULL DEFAULT 0,
    mr_updated_at    BIGINT  NOT NULL DEFAULT 0,
    seen_shas        TEXT    NOT NULL DEFAULT '[]',
    created_at       BIGINT  NOT NULL,
    updated_at       BIGINT  NOT NULL,
    deleted_at       BIGINT  NOT NULL DEFAULT 0,
    UNIQUE (integration_name, name)
);
CREATE INDEX environments_project ON environments (project_id, deleted_at, id);
CREATE INDEX environments_integration ON environments (integration_id);
CREATE UNIQUE INDEX environments_host ON environments (host);

CREATE TABLE deliveries (
    id               {{ID}},
    integration_id   BIGINT,
    integration_name TEXT   NOT NULL,
    event            TEXT   NOT NULL,
    idempotency_key  TEXT   NOT NULL,
    dedupe_key       TEXT   UNIQUE,
    event_uuid       TEXT   NOT NULL,
    webhook_uuid     TEXT   NOT NULL,
    headers          TEXT   NOT NULL,
    body             TEXT   NOT NULL,
    status           TEXT   NOT NULL,
    result           TEXT   NOT NULL DEFAULT '',
    duplicate_of     BIGINT NOT NULL DEFAULT 0,
    received_at      BIGINT NOT NULL,
    processed_at     BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX deliveries_integration ON deliveries (integration_name, id);
CREATE INDEX deliveries_status ON deliveries (status);

CREATE TABLE activities (
    id               {{ID}},
    integration_name TEXT   NOT NULL,
    environment_id   BIGINT NOT NULL DEFAULT 0,
    environment_name TEXT   NOT NULL DEFAULT '',
    delivery_id      BIGINT NOT NULL DEFAULT 0,
    kind             TEXT   NOT NULL,
    state            TEXT   NOT NULL,
    result           TEXT   NOT NULL DEFAULT '',
    sha              TEXT   NOT NULL DEFAULT '',
    description      TEXT   NOT NULL DEFAULT '',
    log              TEXT   NOT NULL DEFAULT '',
    created_at       BIGINT NOT NULL,
    started_at       BIGINT NOT NULL DEFAULT 0,
    completed_at     BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX activities_environment ON activities (environment_id, id);
CREATE INDEX activities_integration ON activities (integration_name, id);
CREATE INDEX activities_delivery ON activities (delivery_id);

CREATE TABLE api_tokens (
    id           {{ID}},
    name         TEXT   NOT NULL,
    hash         TEXT   NOT NULL UNIQUE,
    prefix       TEXT   NOT NULL,
    role         TEXT   NOT NULL,
    created_at   BIGINT NOT NULL,
    last_used_at BIGINT NOT NULL DEFAULT 0,
    revoked_at   BIGINT NOT NULL DEFAULT 0
);
