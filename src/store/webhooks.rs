//! `webhook_endpoints`: each configured endpoint's cursor in the event log,
//! its retry state and its lease; and the reads of `session_events` that
//! delivery makes. Every write after the first is conditional on the
//! writer holding the lease, so an instance that lost it changes nothing.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::schema::{session_events, webhook_endpoints};
use crate::db::{Conn, DbResult, IntoDbResult};
use crate::store::events::{self, StoredEvent};

/// One endpoint's row.
#[derive(Clone, Debug, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = webhook_endpoints)]
pub struct EndpointRow {
    pub id: String,
    /// The last event delivered or passed over by the endpoint's filter.
    pub cursor: i64,
    /// Failed attempts at the event after the cursor.
    pub attempts: i32,
    /// No attempt before this (the back-off after a failure).
    pub next_attempt_at: Option<NaiveDateTime>,
    pub last_error: String,
    pub lease_owner: String,
    pub lease_until: Option<NaiveDateTime>,
}

/// Adds the endpoint's row unless it exists, with its cursor at the newest
/// event: a new endpoint gets the events from now on. Returns whether it
/// added it.
pub fn register(conn: &mut Conn, id: &str) -> DbResult<bool> {
    if find(conn, id)?.is_some() {
        return Ok(false);
    }
    let cursor = events::last_id(conn)?;
    // In a savepoint when inside a transaction, so that losing the race
    // to another instance leaves the transaction usable.
    let inserted = conn
        .transaction(|conn| {
            diesel::insert_into(webhook_endpoints::table)
                .values((
                    webhook_endpoints::id.eq(id),
                    webhook_endpoints::cursor.eq(cursor),
                ))
                .execute(conn)
        })
        .db();
    match inserted {
        Ok(_) => Ok(true),
        // Another instance added it first.
        Err(e) if super::is_unique_violation(&e) => Ok(false),
        Err(e) => Err(e),
    }
}

pub fn find(conn: &mut Conn, id: &str) -> DbResult<Option<EndpointRow>> {
    webhook_endpoints::table
        .find(id)
        .select(EndpointRow::as_select())
        .first(conn)
        .optional()
        .db()
}

/// Takes or renews the lease on the endpoint until `until`, if it is free,
/// expired or already `owner`'s: one conditional `UPDATE`, so of several
/// instances asking at once exactly one gets it. Returns the row when
/// `owner` holds the lease.
pub fn claim(
    conn: &mut Conn,
    id: &str,
    owner: &str,
    now: NaiveDateTime,
    until: NaiveDateTime,
) -> DbResult<Option<EndpointRow>> {
    use webhook_endpoints::dsl as w;
    diesel::update(
        w::webhook_endpoints.filter(w::id.eq(id)).filter(
            w::lease_owner
                .eq(owner)
                .or(w::lease_owner.eq(""))
                .or(w::lease_until.is_null())
                .or(w::lease_until.lt(now)),
        ),
    )
    .set((w::lease_owner.eq(owner), w::lease_until.eq(Some(until))))
    .returning((
        w::id,
        w::cursor,
        w::attempts,
        w::next_attempt_at,
        w::last_error,
        w::lease_owner,
        w::lease_until,
    ))
    .get_result::<EndpointRow>(conn)
    .optional()
    .db()
}

/// Gives the lease up, if `owner` holds it.
pub fn release(conn: &mut Conn, id: &str, owner: &str) -> DbResult<()> {
    use webhook_endpoints::dsl as w;
    diesel::update(
        w::webhook_endpoints
            .filter(w::id.eq(id))
            .filter(w::lease_owner.eq(owner)),
    )
    .set((
        w::lease_owner.eq(""),
        w::lease_until.eq(None::<NaiveDateTime>),
    ))
    .execute(conn)
    .db()?;
    Ok(())
}

/// Moves the cursor to `cursor` (an event delivered, or the last of those
/// the filter passes over), clears the retry state and renews the lease.
/// Returns false, changing nothing, when `owner` no longer holds the lease.
pub fn advance(
    conn: &mut Conn,
    id: &str,
    owner: &str,
    cursor: i64,
    lease_until: NaiveDateTime,
) -> DbResult<bool> {
    use webhook_endpoints::dsl as w;
    let updated = diesel::update(
        w::webhook_endpoints
            .filter(w::id.eq(id))
            .filter(w::lease_owner.eq(owner)),
    )
    .set((
        w::cursor.eq(cursor),
        w::attempts.eq(0),
        w::next_attempt_at.eq(None::<NaiveDateTime>),
        w::last_error.eq(""),
        w::lease_until.eq(Some(lease_until)),
    ))
    .execute(conn)
    .db()?;
    Ok(updated == 1)
}

/// Records a failed attempt at the event after the cursor: the count, the
/// earliest next attempt and why; renews the lease. Returns false, changing
/// nothing, when `owner` no longer holds the lease.
pub fn failed(
    conn: &mut Conn,
    id: &str,
    owner: &str,
    attempts: i32,
    next_attempt_at: NaiveDateTime,
    error: &str,
    lease_until: NaiveDateTime,
) -> DbResult<bool> {
    use webhook_endpoints::dsl as w;
    let updated = diesel::update(
        w::webhook_endpoints
            .filter(w::id.eq(id))
            .filter(w::lease_owner.eq(owner)),
    )
    .set((
        w::attempts.eq(attempts),
        w::next_attempt_at.eq(Some(next_attempt_at)),
        w::last_error.eq(error),
        w::lease_until.eq(Some(lease_until)),
    ))
    .execute(conn)
    .db()?;
    Ok(updated == 1)
}

/// Up to `limit` events after `after` and up to `up_to`, oldest first, of
/// the given types (`None`: every type).
pub fn pending(
    conn: &mut Conn,
    after: i64,
    up_to: i64,
    kinds: Option<&[String]>,
    limit: i64,
) -> DbResult<Vec<StoredEvent>> {
    let mut select = session_events::table
        .filter(session_events::id.gt(after))
        .filter(session_events::id.le(up_to))
        .into_boxed();
    if let Some(kinds) = kinds {
        select = select.filter(session_events::kind.eq_any(kinds));
    }
    select
        .order(session_events::id.asc())
        .limit(limit)
        .select(StoredEvent::as_select())
        .load(conn)
        .db()
}

/// How many events [`pending`] would return without a limit.
pub fn count_pending(
    conn: &mut Conn,
    after: i64,
    up_to: i64,
    kinds: Option<&[String]>,
) -> DbResult<i64> {
    let mut select = session_events::table
        .filter(session_events::id.gt(after))
        .filter(session_events::id.le(up_to))
        .into_boxed();
    if let Some(kinds) = kinds {
        select = select.filter(session_events::kind.eq_any(kinds));
    }
    select.count().get_result(conn).db()
}
