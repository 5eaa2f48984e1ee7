DROP TRIGGER sessions_counted_delete ON sessions;
DROP TRIGGER sessions_counted_update ON sessions;
DROP TRIGGER sessions_counted_insert ON sessions;
DROP FUNCTION sessions_counted_delete();
DROP FUNCTION sessions_counted_update();
DROP FUNCTION sessions_counted_insert();
DROP FUNCTION session_counters_apply(BIGINT);
DROP TABLE session_counters;
