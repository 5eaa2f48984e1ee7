-- The number of sessions not yet ended, kept by triggers (see the Postgres
-- migration of the same name).
CREATE TABLE session_counters (
    name  TEXT PRIMARY KEY,
    value BIGINT NOT NULL
);
INSERT INTO session_counters (name, value)
    SELECT 'unended', COUNT(*) FROM sessions WHERE logout_at IS NULL;

CREATE TRIGGER sessions_counted_insert AFTER INSERT ON sessions
    WHEN NEW.logout_at IS NULL
BEGIN
    UPDATE session_counters SET value = value + 1 WHERE name = 'unended';
END;

CREATE TRIGGER sessions_counted_end AFTER UPDATE OF logout_at ON sessions
    WHEN OLD.logout_at IS NULL AND NEW.logout_at IS NOT NULL
BEGIN
    UPDATE session_counters SET value = value - 1 WHERE name = 'unended';
END;

CREATE TRIGGER sessions_counted_reopen AFTER UPDATE OF logout_at ON sessions
    WHEN OLD.logout_at IS NOT NULL AND NEW.logout_at IS NULL
BEGIN
    UPDATE session_counters SET value = value + 1 WHERE name = 'unended';
END;

CREATE TRIGGER sessions_counted_delete AFTER DELETE ON sessions
    WHEN OLD.logout_at IS NULL
BEGIN
    UPDATE session_counters SET value = value - 1 WHERE name = 'unended';
END;
