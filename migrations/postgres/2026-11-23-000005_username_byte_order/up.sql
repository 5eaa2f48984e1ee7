-- Lists sort usernames by bytes (COLLATE "C"), whatever the database's
-- locale; the unique index on username_key follows the locale, so the admin
-- list's name order needs its own index to walk users page by page.
CREATE INDEX users_username_key_bytes_idx ON users (username_key COLLATE "C", id);
