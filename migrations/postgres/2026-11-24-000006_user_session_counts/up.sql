-- Each user's sessions not yet ended, kept by the session counters'
-- triggers in the transaction of every session start and end; the sweep
-- ends expired sessions, so it keeps the count true as well. The admin
-- users list walks the users with a count instead of probing every user's
-- sessions.
--
-- Each trigger writes the users' rows before the global counter: the order
-- a login with a second factor takes them too (its user's row, then the new
-- session), so two transactions never wait on each other in a circle.
ALTER TABLE users ADD COLUMN unended_sessions BIGINT NOT NULL DEFAULT 0;
UPDATE users u SET unended_sessions = c.n
    FROM (SELECT user_id, COUNT(*) AS n FROM sessions WHERE logout_at IS NULL GROUP BY user_id) c
    WHERE u.id = c.user_id;

CREATE INDEX users_with_sessions_by_name_idx ON users (username_key COLLATE "C", id)
    WHERE unended_sessions > 0;
CREATE INDEX users_with_sessions_by_count_idx ON users (unended_sessions, id)
    WHERE unended_sessions > 0;

CREATE OR REPLACE FUNCTION sessions_counted_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE users u SET unended_sessions = u.unended_sessions + d.n
        FROM (SELECT user_id, COUNT(*) AS n FROM new_rows
              WHERE logout_at IS NULL GROUP BY user_id) d
        WHERE u.id = d.user_id;
    PERFORM session_counters_apply((SELECT COUNT(*) FROM new_rows WHERE logout_at IS NULL));
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION sessions_counted_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE users u SET unended_sessions = u.unended_sessions + d.n
        FROM (SELECT user_id, SUM(n) AS n FROM (
                  SELECT user_id, 1 AS n FROM new_rows WHERE logout_at IS NULL
                  UNION ALL
                  SELECT user_id, -1 AS n FROM old_rows WHERE logout_at IS NULL) c
              GROUP BY user_id HAVING SUM(n) <> 0) d
        WHERE u.id = d.user_id;
    PERFORM session_counters_apply(
        (SELECT COUNT(*) FROM new_rows WHERE logout_at IS NULL)
        - (SELECT COUNT(*) FROM old_rows WHERE logout_at IS NULL));
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION sessions_counted_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE users u SET unended_sessions = u.unended_sessions - d.n
        FROM (SELECT user_id, COUNT(*) AS n FROM old_rows
              WHERE logout_at IS NULL GROUP BY user_id) d
        WHERE u.id = d.user_id;
    PERFORM session_counters_apply(-(SELECT COUNT(*) FROM old_rows WHERE logout_at IS NULL));
    RETURN NULL;
END
$$;
