-- The triggers go back to counting only the global total.
CREATE OR REPLACE FUNCTION sessions_counted_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM session_counters_apply((SELECT COUNT(*) FROM new_rows WHERE logout_at IS NULL));
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION sessions_counted_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM session_counters_apply(
        (SELECT COUNT(*) FROM new_rows WHERE logout_at IS NULL)
        - (SELECT COUNT(*) FROM old_rows WHERE logout_at IS NULL));
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION sessions_counted_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM session_counters_apply(-(SELECT COUNT(*) FROM old_rows WHERE logout_at IS NULL));
    RETURN NULL;
END
$$;

DROP INDEX users_with_sessions_by_count_idx;
DROP INDEX users_with_sessions_by_name_idx;
ALTER TABLE users DROP COLUMN unended_sessions;
