//! `auth_failures`: one row per failed login or 2FA attempt, counted over a
//! sliding window. In the database so limits hold across instances.

use chrono::NaiveDateTime;
use diesel::dsl::{count_star, min};
use diesel::prelude::*;

use crate::db::schema::auth_failures;
use crate::db::{Conn, DbResult, IntoDbResult};

/// What is being counted.
#[derive(Clone, Copy, Debug)]
pub enum Scope {
    LoginUser,
    LoginIp,
    TwoFactor,
}

impl Scope {
    fn as_str(self) -> &'static str {
        match self {
            Scope::LoginUser => "login-user",
            Scope::LoginIp => "login-ip",
            Scope::TwoFactor => "2fa",
        }
    }
}

pub fn record(conn: &mut Conn, scope: Scope, key: &str, at: NaiveDateTime) -> DbResult<()> {
    diesel::insert_into(auth_failures::table)
        .values((
            auth_failures::scope.eq(scope.as_str()),
            auth_failures::key.eq(key),
            auth_failures::at.eq(at),
        ))
        .execute(conn)
        .db()?;
    Ok(())
}

/// Failures since `since`, and the oldest of them (to compute Retry-After).
pub fn recent(
    conn: &mut Conn,
    scope: Scope,
    key: &str,
    since: NaiveDateTime,
) -> DbResult<(i64, Option<NaiveDateTime>)> {
    auth_failures::table
        .filter(auth_failures::scope.eq(scope.as_str()))
        .filter(auth_failures::key.eq(key))
        .filter(auth_failures::at.gt(since))
        .select((count_star(), min(auth_failures::at)))
        .first(conn)
        .db()
}

pub fn clear(conn: &mut Conn, scope: Scope, key: &str) -> DbResult<()> {
    diesel::delete(
        auth_failures::table
            .filter(auth_failures::scope.eq(scope.as_str()))
            .filter(auth_failures::key.eq(key)),
    )
    .execute(conn)
    .db()?;
    Ok(())
}

/// Drops rows too old to count in any window.
pub fn purge(conn: &mut Conn, before: NaiveDateTime) -> DbResult<usize> {
    diesel::delete(auth_failures::table.filter(auth_failures::at.lt(before)))
        .execute(conn)
        .db()
}
