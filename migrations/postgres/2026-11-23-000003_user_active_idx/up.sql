-- A user's active sessions, counted from the index alone (admin lists,
-- logout of all of a user's sessions).
CREATE INDEX sessions_user_active_idx ON sessions (user_id, expires_at) WHERE logout_at IS NULL;
