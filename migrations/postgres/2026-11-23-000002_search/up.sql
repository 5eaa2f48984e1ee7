-- Regex filters on session lists. `regex_imatch` is the one SQL function
-- the queries call on both stores; here it is a plain SQL function over
-- `~*` that the planner inlines, so the trigram indexes below serve it.
CREATE EXTENSION IF NOT EXISTS pg_trgm;

CREATE FUNCTION regex_imatch(text, text) RETURNS boolean
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT $1 ~* $2 $$;

CREATE INDEX sessions_search_term_trgm_idx ON sessions USING gin (search_term gin_trgm_ops);
CREATE INDEX users_username_trgm_idx ON users USING gin (username gin_trgm_ops);
CREATE INDEX users_name_trgm_idx ON users USING gin (name gin_trgm_ops);
