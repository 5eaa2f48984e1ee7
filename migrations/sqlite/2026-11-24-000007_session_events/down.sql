DROP INDEX sessions_user_device_idx;
ALTER TABLE sessions DROP COLUMN new_device;
ALTER TABLE sessions DROP COLUMN device_key;
DROP TABLE webhook_endpoints;
DROP TABLE session_events;
