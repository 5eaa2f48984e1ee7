//! `backup_codes`: the one-time second-factor codes of users with TOTP on,
//! stored as hashes. Enabling and disabling TOTP (in `users`) replace or
//! delete them inside their own transaction.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::schema::backup_codes;
use crate::db::{Conn, DbResult, IntoDbResult};

/// Replaces the user's codes with `code_hashes`. Call it inside the
/// transaction that turns TOTP on, so old and new codes never both hold.
pub fn replace(conn: &mut Conn, user_id: i64, code_hashes: &[String]) -> DbResult<()> {
    delete_for_user(conn, user_id)?;
    // Row by row: the connection enum has no multi-row insert, and there are ten.
    for hash in code_hashes {
        diesel::insert_into(backup_codes::table)
            .values((
                backup_codes::user_id.eq(user_id),
                backup_codes::code_hash.eq(hash),
            ))
            .execute(conn)
            .db()?;
    }
    Ok(())
}

/// Forgets all of the user's codes, used or not.
pub fn delete_for_user(conn: &mut Conn, user_id: i64) -> DbResult<usize> {
    diesel::delete(backup_codes::table.filter(backup_codes::user_id.eq(user_id)))
        .execute(conn)
        .db()
}

/// Marks a backup code used; true only for the first use of a valid code.
pub fn use_backup_code(
    conn: &mut Conn,
    user_id: i64,
    code_hash: &str,
    now: NaiveDateTime,
) -> DbResult<bool> {
    let updated = diesel::update(
        backup_codes::table
            .filter(backup_codes::user_id.eq(user_id))
            .filter(backup_codes::code_hash.eq(code_hash))
            .filter(backup_codes::used_at.is_null()),
    )
    .set(backup_codes::used_at.eq(now))
    .execute(conn)
    .db()?;
    Ok(updated == 1)
}
