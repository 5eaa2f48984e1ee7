-- The number of sessions not yet ended, kept by triggers, so the total of
-- everyone's active sessions costs a row read plus a count of the few
-- sessions that expired since the last sweep, instead of a scan of all.
CREATE TABLE session_counters (
    name  TEXT PRIMARY KEY,
    value BIGINT NOT NULL
);
INSERT INTO session_counters (name, value)
    SELECT 'unended', COUNT(*) FROM sessions WHERE logout_at IS NULL;

-- Statement-level, so a bulk load or a mass logout updates the counter once;
-- statements that change nothing (activity writes) leave the row alone.
CREATE FUNCTION session_counters_apply(delta BIGINT) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    IF delta <> 0 THEN
        UPDATE session_counters SET value = value + delta WHERE name = 'unended';
    END IF;
END
$$;

CREATE FUNCTION sessions_counted_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM session_counters_apply((SELECT COUNT(*) FROM new_rows WHERE logout_at IS NULL));
    RETURN NULL;
END
$$;

CREATE FUNCTION sessions_counted_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM session_counters_apply(
        (SELECT COUNT(*) FROM new_rows WHERE logout_at IS NULL)
        - (SELECT COUNT(*) FROM old_rows WHERE logout_at IS NULL));
    RETURN NULL;
END
$$;

CREATE FUNCTION sessions_counted_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM session_counters_apply(-(SELECT COUNT(*) FROM old_rows WHERE logout_at IS NULL));
    RETURN NULL;
END
$$;

CREATE TRIGGER sessions_counted_insert AFTER INSERT ON sessions
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION sessions_counted_insert();
CREATE TRIGGER sessions_counted_update AFTER UPDATE ON sessions
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION sessions_counted_update();
CREATE TRIGGER sessions_counted_delete AFTER DELETE ON sessions
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION sessions_counted_delete();
