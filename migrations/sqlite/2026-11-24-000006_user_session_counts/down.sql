DROP TRIGGER users_unended_delete;
DROP TRIGGER users_unended_reopen;
DROP TRIGGER users_unended_end;
DROP TRIGGER users_unended_insert;
DROP INDEX users_with_sessions_by_count_idx;
DROP INDEX users_with_sessions_by_name_idx;
ALTER TABLE users DROP COLUMN unended_sessions;
