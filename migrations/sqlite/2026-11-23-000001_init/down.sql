DROP TABLE server_settings;
DROP TABLE auth_failures;
DROP TABLE backup_codes;
DROP TABLE sessions;
DROP TABLE users;
