-- Each user's sessions not yet ended, kept by triggers (see the Postgres
-- migration of the same name).
ALTER TABLE users ADD COLUMN unended_sessions BIGINT NOT NULL DEFAULT 0;
UPDATE users SET unended_sessions =
    (SELECT COUNT(*) FROM sessions WHERE sessions.user_id = users.id AND sessions.logout_at IS NULL);

CREATE INDEX users_with_sessions_by_name_idx ON users (username_key, id)
    WHERE unended_sessions > 0;
CREATE INDEX users_with_sessions_by_count_idx ON users (unended_sessions, id)
    WHERE unended_sessions > 0;

CREATE TRIGGER users_unended_insert AFTER INSERT ON sessions
    WHEN NEW.logout_at IS NULL
BEGIN
    UPDATE users SET unended_sessions = unended_sessions + 1 WHERE id = NEW.user_id;
END;

CREATE TRIGGER users_unended_end AFTER UPDATE OF logout_at ON sessions
    WHEN OLD.logout_at IS NULL AND NEW.logout_at IS NOT NULL
BEGIN
    UPDATE users SET unended_sessions = unended_sessions - 1 WHERE id = NEW.user_id;
END;

CREATE TRIGGER users_unended_reopen AFTER UPDATE OF logout_at ON sessions
    WHEN OLD.logout_at IS NOT NULL AND NEW.logout_at IS NULL
BEGIN
    UPDATE users SET unended_sessions = unended_sessions + 1 WHERE id = NEW.user_id;
END;

CREATE TRIGGER users_unended_delete AFTER DELETE ON sessions
    WHEN OLD.logout_at IS NULL
BEGIN
    UPDATE users SET unended_sessions = unended_sessions - 1 WHERE id = OLD.user_id;
END;
