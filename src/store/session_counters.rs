//! `session_counters`: counts kept by triggers on `sessions`, so that
//! everyone's total costs no scan.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Nullable};

use crate::db::schema::{session_counters, sessions};
use crate::db::{Conn, DbResult, IntoDbResult};

/// The counter of sessions not ended.
pub(crate) const UNENDED: &str = "unended";

diesel::define_sql_function! {
    /// `COALESCE(x, fallback)` for a count that may be missing.
    fn coalesce(x: Nullable<BigInt>, fallback: BigInt) -> BigInt;
}

/// Every active session: the sessions not ended, less those that expired
/// and wait for the sweep to end them. One statement, so both parts come
/// from the same snapshot.
pub fn active_sessions(conn: &mut Conn, now: NaiveDateTime) -> DbResult<i64> {
    let unended = session_counters::table
        .filter(session_counters::name.eq(UNENDED))
        .select(session_counters::value)
        .single_value();
    let expired = sessions::table
        .filter(sessions::logout_at.is_null())
        .filter(sessions::expires_at.le(now))
        .count()
        .single_value();
    diesel::select(coalesce(unended, 0i64) - coalesce(expired, 0i64))
        .get_result(conn)
        .db()
}
