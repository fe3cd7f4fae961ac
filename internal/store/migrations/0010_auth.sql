-- People and access (issue 13, internal/auth): GitLab hosts people sign in
-- with, users and their GitLab identities (OAuth connections), server-side
-- sessions, one-time sign-in states, spaces and grants, the audit trail, and
-- what API tokens gained (an owner, a scope, an expiry).

-- A GitLab instance registered as an OAuth application. host is the host
-- part of url (with its port), the key /auth/gitlab?host= names.
CREATE TABLE gitlab_hosts (
    id                {{ID}},
    host              TEXT   NOT NULL UNIQUE,
    url               TEXT   NOT NULL,
    client_id         TEXT   NOT NULL,
    client_secret_enc TEXT   NOT NULL,
    created_at        BIGINT NOT NULL
);

-- A person. Their GitLab accounts are identities; a user is never found by
-- username alone.
CREATE TABLE users (
    id            {{ID}},
    username      TEXT    NOT NULL,
    name          TEXT    NOT NULL,
    is_admin      BOOLEAN NOT NULL DEFAULT FALSE,
    created_at    BIGINT  NOT NULL,
    last_seen_at  BIGINT  NOT NULL DEFAULT 0
);

-- One GitLab account (host + GitLab user id) of a user, with its sealed
-- OAuth tokens. state is connected or reconnect_needed; lease_owner /
-- lease_until is the per-identity refresh lock that holds across replicas.
CREATE TABLE identities (
    id                {{ID}},
    user_id           BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    host              TEXT   NOT NULL,
    gitlab_user_id    BIGINT NOT NULL,
    username          TEXT   NOT NULL,
    access_token_enc  TEXT   NOT NULL,
    refresh_token_enc TEXT   NOT NULL,
    expires_at        BIGINT NOT NULL,
    scopes            TEXT   NOT NULL,
    state             TEXT   NOT NULL,
    lease_owner       TEXT   NOT NULL DEFAULT '',
    lease_until       BIGINT NOT NULL DEFAULT 0,
    created_at        BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL,
    UNIQUE (host, gitlab_user_id)
);
CREATE INDEX identities_user ON identities (user_id);

-- Server-side sessions: the cookie holds a random value, the table its hash.
CREATE TABLE sessions (
    id           {{ID}},
    hash         TEXT   NOT NULL UNIQUE,
    user_id      BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    csrf         TEXT   NOT NULL,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    remote_addr  TEXT   NOT NULL DEFAULT ''
);
CREATE INDEX sessions_expiry ON sessions (expires_at);

-- A sign-in in flight: the hash of the nonce the browser holds in a cookie,
-- what the state says, and the sealed PKCE verifier. Used once.
CREATE TABLE oauth_states (
    nonce_hash    TEXT   PRIMARY KEY,
    host          TEXT   NOT NULL,
    return_to     TEXT   NOT NULL,
    verifier_enc  TEXT   NOT NULL,
    user_id       BIGINT NOT NULL DEFAULT 0,
    expires_at    BIGINT NOT NULL
);

CREATE TABLE spaces (
    id          {{ID}},
    name        TEXT    NOT NULL UNIQUE,
    parent      TEXT    NOT NULL,
    inherit     BOOLEAN NOT NULL,
    description TEXT    NOT NULL DEFAULT '',
    created_at  BIGINT  NOT NULL
);
INSERT INTO spaces (name, parent, inherit, description, created_at) VALUES ('root', '', TRUE, 'every space is below root', 0);

CREATE TABLE grants (
    user_id    BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    space      TEXT   NOT NULL,
    role       TEXT   NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, space)
);

-- GitLab access levels read with the user's own token, kept at most a few
-- minutes (internal/auth decides how long).
CREATE TABLE gitlab_memberships (
    identity_id  BIGINT NOT NULL REFERENCES identities (id) ON DELETE CASCADE,
    project_id   BIGINT NOT NULL,
    access_level BIGINT NOT NULL,
    checked_at   BIGINT NOT NULL,
    PRIMARY KEY (identity_id, project_id)
);

CREATE TABLE audit_events (
    id          {{ID}},
    at          BIGINT NOT NULL,
    actor       TEXT   NOT NULL,
    action      TEXT   NOT NULL,
    target      TEXT   NOT NULL,
    detail      TEXT   NOT NULL DEFAULT '',
    remote_addr TEXT   NOT NULL DEFAULT ''
);
CREATE INDEX audit_events_at ON audit_events (at);

-- One-time tickets that hand a signed-in person over to an environment's host.
CREATE TABLE env_tickets (
    hash       TEXT   PRIMARY KEY,
    user_id    BIGINT NOT NULL,
    host       TEXT   NOT NULL,
    expires_at BIGINT NOT NULL
);

-- Cookies an environment host set after a ticket; the value's hash.
CREATE TABLE env_sessions (
    hash       TEXT   PRIMARY KEY,
    user_id    BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    host       TEXT   NOT NULL,
    expires_at BIGINT NOT NULL
);

ALTER TABLE api_tokens ADD COLUMN user_id BIGINT NOT NULL DEFAULT 0;
ALTER TABLE api_tokens ADD COLUMN scope TEXT NOT NULL DEFAULT 'api';
ALTER TABLE api_tokens ADD COLUMN expires_at BIGINT NOT NULL DEFAULT 0;
ALTER TABLE integrations ADD COLUMN environment_access TEXT NOT NULL DEFAULT 'public';
