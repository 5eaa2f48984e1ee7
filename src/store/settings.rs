//! `server_settings`: values every instance must agree on.

use diesel::prelude::*;

use crate::db::schema::server_settings;
use crate::db::{Conn, DbResult, IntoDbResult};

pub const KEY_CHECK: &str = "secret_key_check";

pub fn get(conn: &mut Conn, name: &str) -> DbResult<Option<String>> {
    server_settings::table
        .find(name)
        .select(server_settings::value)
        .first(conn)
        .optional()
        .db()
}

/// Stores `value` unless the setting exists; returns the value now stored.
pub fn get_or_insert(conn: &mut Conn, name: &str, value: &str) -> DbResult<String> {
    if let Some(existing) = get(conn, name)? {
        return Ok(existing);
    }
    let inserted = diesel::insert_into(server_settings::table)
        .values((
            server_settings::name.eq(name),
            server_settings::value.eq(value),
        ))
        .execute(conn)
        .db();
    match inserted {
        Ok(_) => Ok(value.to_owned()),
        // Another instance won the race; theirs stands.
        Err(e) if super::is_unique_violation(&e) => get(conn, name)?
            .ok_or_else(|| crate::db::DbError::Query(diesel::result::Error::NotFound)),
        Err(e) => Err(e),
    }
}
