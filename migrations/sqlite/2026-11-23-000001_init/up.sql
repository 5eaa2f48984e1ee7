-- Users, sessions, and the state that must be shared by every instance:
-- TOTP replay steps, backup codes and failure counters for throttling.
CREATE TABLE users (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    guid           TEXT      NOT NULL UNIQUE,
    username       TEXT      NOT NULL,
    -- Lower-cased in the service so both stores agree on case folding.
    username_key   TEXT      NOT NULL UNIQUE,
    name           TEXT      NOT NULL DEFAULT '',
    password_hash  TEXT      NOT NULL,
    roles          TEXT      NOT NULL DEFAULT 'user',
    active         BOOLEAN   NOT NULL DEFAULT TRUE,
    totp_secret    TEXT,
    totp_enabled   BOOLEAN   NOT NULL DEFAULT FALSE,
    totp_last_step BIGINT,
    created_at     TIMESTAMP NOT NULL,
    updated_at     TIMESTAMP NOT NULL
);

CREATE TABLE sessions (
    id                   INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id           TEXT      NOT NULL UNIQUE,
    user_id              BIGINT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_hash           TEXT      NOT NULL UNIQUE,
    token_hint           TEXT      NOT NULL,
    description          TEXT      NOT NULL DEFAULT '',
    device_type          TEXT      NOT NULL DEFAULT '',
    device_name          TEXT      NOT NULL DEFAULT '',
    device_version       TEXT      NOT NULL DEFAULT '',
    device_long_version  TEXT      NOT NULL DEFAULT '',
    os_name              TEXT      NOT NULL DEFAULT '',
    os_version           TEXT      NOT NULL DEFAULT '',
    device_category      TEXT      NOT NULL DEFAULT '',
    ip                   TEXT      NOT NULL DEFAULT '',
    host                 TEXT      NOT NULL DEFAULT '',
    instance_id          TEXT      NOT NULL DEFAULT '',
    login_at             TIMESTAMP NOT NULL,
    last_activity_at     TIMESTAMP NOT NULL,
    expires_at           TIMESTAMP NOT NULL,
    idle_timeout_seconds BIGINT    NOT NULL,
    permanent            BOOLEAN   NOT NULL DEFAULT FALSE,
    logout_at            TIMESTAMP,
    logout_by            TEXT,
    two_factor_until     TIMESTAMP,
    search_term          TEXT      NOT NULL,
    api_defaults         TEXT      NOT NULL DEFAULT '{}',
    updated_at           TIMESTAMP NOT NULL
);

-- A user's own sessions, newest first.
CREATE INDEX sessions_user_login_idx ON sessions (user_id, login_at DESC, id DESC);
-- Everyone's active sessions, newest first (list.all, admin list).
CREATE INDEX sessions_active_login_idx ON sessions (login_at DESC, id DESC) WHERE logout_at IS NULL;
-- The expiry sweep.
CREATE INDEX sessions_active_expiry_idx ON sessions (expires_at) WHERE logout_at IS NULL;
-- The purge of ended sessions.
CREATE INDEX sessions_ended_idx ON sessions (logout_at) WHERE logout_at IS NOT NULL;

CREATE TABLE backup_codes (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id   BIGINT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_hash TEXT      NOT NULL,
    used_at   TIMESTAMP,
    UNIQUE (user_id, code_hash)
);

-- One row per failed attempt; counted over a sliding window.
CREATE TABLE auth_failures (
    id    INTEGER PRIMARY KEY AUTOINCREMENT,
    scope TEXT      NOT NULL,
    key   TEXT      NOT NULL,
    at    TIMESTAMP NOT NULL
);
CREATE INDEX auth_failures_lookup_idx ON auth_failures (scope, key, at);
CREATE INDEX auth_failures_at_idx ON auth_failures (at);

CREATE TABLE server_settings (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
