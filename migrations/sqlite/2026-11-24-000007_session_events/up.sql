-- The event log: every session start and end, login failure and throttle,
-- second-factor outcome and new device, written in the transaction of the
-- change it records. It is the outbox webhooks are delivered from, the
-- source of the live stream, and the audit trail. SQLite has one writer at
-- a time, so ids are handed out in commit order: a reader that has seen id
-- N never later finds a committed event below N. AUTOINCREMENT keeps ids
-- of purged events from being handed out again.
CREATE TABLE session_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL UNIQUE,
    type TEXT NOT NULL,
    occurred_at TIMESTAMP NOT NULL,
    user_id TEXT NOT NULL DEFAULT '',
    session_id TEXT NOT NULL DEFAULT '',
    data TEXT NOT NULL
);
CREATE INDEX session_events_user_idx ON session_events (user_id, id);
CREATE INDEX session_events_type_idx ON session_events (type, id);
CREATE INDEX session_events_time_idx ON session_events (occurred_at);

-- One row per configured webhook endpoint: how far delivery has got, its
-- retry state, and which instance holds it for now.
CREATE TABLE webhook_endpoints (
    id TEXT PRIMARY KEY,
    cursor BIGINT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMP,
    last_error TEXT NOT NULL DEFAULT '',
    lease_owner TEXT NOT NULL DEFAULT '',
    lease_until TIMESTAMP
);

-- The device a session was opened from (browser, OS and network), and
-- whether the user had not used it within the new-device window.
ALTER TABLE sessions ADD COLUMN device_key TEXT NOT NULL DEFAULT '';
ALTER TABLE sessions ADD COLUMN new_device BOOLEAN NOT NULL DEFAULT 0;
CREATE INDEX sessions_user_device_idx ON sessions (user_id, device_key, login_at);
