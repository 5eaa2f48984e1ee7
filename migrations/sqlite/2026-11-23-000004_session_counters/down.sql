DROP TRIGGER sessions_counted_delete;
DROP TRIGGER sessions_counted_reopen;
DROP TRIGGER sessions_counted_end;
DROP TRIGGER sessions_counted_insert;
DROP TABLE session_counters;
