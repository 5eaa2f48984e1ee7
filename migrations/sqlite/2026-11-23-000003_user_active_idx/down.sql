DROP INDEX sessions_user_active_idx;
