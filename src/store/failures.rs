//! `auth_failures`: one row per failed login or 2FA attempt, counted over a
//! sliding window. In the database so limits hold across instances.
//!
//! An attempt is charged *before* the password or code is checked
//! ([`reserve`]), in one serialized step with the check of the count, so
//! parallel attempts cannot all slip under the limit while the first ones
//! are still being hashed. A successful attempt gives its charge back.

use chrono::NaiveDateTime;
use diesel::dsl::{count_star, max, min};
use diesel::prelude::*;

use crate::db::schema::auth_failures;
use crate::db::{Conn, DbError, DbResult, IntoDbResult};

/// What is being counted.
#[derive(Clone, Copy, Debug)]
pub enum Scope {
    LoginUser,
    LoginIp,
    TwoFactor,
}

impl Scope {
    /// The limit's name in metrics.
    pub fn label(self) -> &'static str {
        match self {
            Scope::LoginUser => "login_user",
            Scope::LoginIp => "login_ip",
            Scope::TwoFactor => "two_factor",
        }
    }

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

/// The failures charged for one attempt, to give back if it succeeds.
#[derive(Clone, Debug, Default)]
pub struct Reservation {
    ids: Vec<i64>,
}

/// One limit an attempt is charged against: at most `max` failures per
/// `(scope, key)` since the window's start.
#[derive(Clone, Copy, Debug)]
pub struct Limit<'a> {
    pub scope: Scope,
    pub key: &'a str,
    pub max: i64,
}

/// Why an attempt was refused: the oldest failure that still counts,
/// from which the caller says when to retry.
#[derive(Clone, Copy, Debug)]
pub struct Refused {
    /// The limit that was full (the first, if several were).
    pub scope: Scope,
    pub oldest: Option<NaiveDateTime>,
}

impl Refused {
    /// Seconds until the oldest counted failure leaves a window of
    /// `window_seconds` (at least 1).
    pub fn retry_after(&self, window_seconds: i64, now: NaiveDateTime) -> i64 {
        let reopens =
            crate::domain::clock::plus_seconds(self.oldest.unwrap_or(now), window_seconds);
        (crate::domain::clock::unix_seconds(reopens) - crate::domain::clock::unix_seconds(now))
            .max(1)
    }
}

enum Step {
    Refused(Refused),
    Db(DbError),
}

impl From<diesel::result::Error> for Step {
    fn from(error: diesel::result::Error) -> Self {
        Step::Db(DbError::from_diesel(error))
    }
}

impl From<DbError> for Step {
    fn from(error: DbError) -> Self {
        Step::Db(error)
    }
}

/// Charges one failure against every limit if each is still under its
/// maximum, or none if any is full. Attempts on one key are serialized: on
/// Postgres by a transaction-scoped advisory lock per key (taken in the
/// order given, so callers that pass the same scopes in the same order never
/// deadlock); on SQLite by the database's single writer, which the first
/// insert takes. So the count each attempt sees includes every attempt
/// before it, on every instance.
pub fn reserve(
    conn: &mut Conn,
    limits: &[Limit<'_>],
    since: NaiveDateTime,
    now: NaiveDateTime,
) -> DbResult<Result<Reservation, Refused>> {
    let outcome = conn.transaction(|conn| -> Result<Reservation, Step> {
        #[cfg(feature = "postgres")]
        if let crate::db::AnyConnection::Postgresql(pg) = conn {
            for limit in limits {
                diesel::sql_query("SELECT pg_advisory_xact_lock($1)")
                    .bind::<diesel::sql_types::BigInt, _>(lock_key(limit.scope, limit.key))
                    .execute(pg)?;
            }
        }
        let mut ids = Vec::with_capacity(limits.len());
        for limit in limits {
            record(conn, limit.scope, limit.key, now)?;
            // Serialized as above, the newest row for this key is ours.
            let id: Option<i64> = auth_failures::table
                .filter(auth_failures::scope.eq(limit.scope.as_str()))
                .filter(auth_failures::key.eq(limit.key))
                .select(max(auth_failures::id))
                .first(conn)?;
            ids.extend(id);
        }
        for limit in limits {
            let (failed, oldest) = recent(conn, limit.scope, limit.key, since)?;
            // `failed` counts this attempt's own charge.
            if failed > limit.max.max(0) {
                return Err(Step::Refused(Refused {
                    scope: limit.scope,
                    oldest,
                }));
            }
        }
        Ok(Reservation { ids })
    });
    match outcome {
        Ok(reservation) => Ok(Ok(reservation)),
        Err(Step::Refused(refused)) => Ok(Err(refused)),
        Err(Step::Db(error)) => Err(error),
    }
}

/// Gives back the charge of an attempt that succeeded (or was never checked).
pub fn release(conn: &mut Conn, reservation: &Reservation) -> DbResult<()> {
    if reservation.ids.is_empty() {
        return Ok(());
    }
    diesel::delete(auth_failures::table.filter(auth_failures::id.eq_any(&reservation.ids)))
        .execute(conn)
        .db()?;
    Ok(())
}

/// The advisory lock that serializes attempts on one `(scope, key)`.
#[cfg(feature = "postgres")]
fn lock_key(scope: Scope, key: &str) -> i64 {
    use sha2::{Digest, Sha256};
    let digest = Sha256::new()
        .chain_update(scope.as_str())
        .chain_update([0])
        .chain_update(key)
        .finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    i64::from_be_bytes(first)
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
