DROP INDEX users_name_trgm_idx;
DROP INDEX users_username_trgm_idx;
DROP INDEX sessions_search_term_trgm_idx;
DROP FUNCTION regex_imatch(text, text);
