//! `session_events`: the event log, written in the transaction of the
//! change each event records, and read in id order by the webhook
//! delivery, the live stream and the audit trail.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde_json::{Map, Value};

use crate::db::schema::session_events;
use crate::db::{Conn, DbResult, IntoDbResult};
use crate::domain::clock;
use crate::domain::event::Event;

/// The advisory lock that orders event ids by commit on Postgres.
#[cfg(feature = "postgres")]
const ORDER_LOCK: i64 = 0x5e55_10d0_e7e7;

#[derive(Clone, Debug, Queryable, Selectable)]
#[diesel(table_name = session_events)]
pub struct StoredEvent {
    pub id: i64,
    pub event_id: String,
    pub kind: String,
    pub occurred_at: NaiveDateTime,
    pub user_id: String,
    pub session_id: String,
    pub data: String,
}

impl StoredEvent {
    /// The event as webhooks, the live stream and the audit trail carry it:
    /// `{"type", "timestamp", "data": {"eventId", "userId", "sessionId", …}}`.
    pub fn payload(&self) -> Value {
        let mut data: Map<String, Value> = serde_json::from_str(&self.data).unwrap_or_default();
        data.insert("eventId".into(), self.event_id.clone().into());
        if !self.user_id.is_empty() {
            data.insert("userId".into(), self.user_id.clone().into());
        }
        if !self.session_id.is_empty() {
            data.insert("sessionId".into(), self.session_id.clone().into());
        }
        serde_json::json!({
            "type": self.kind,
            "timestamp": clock::iso_millis(self.occurred_at),
            "data": data,
        })
    }
}

/// Rows per `INSERT`: six parameters each, well below SQLite's 32,766.
const ROWS_PER_INSERT: usize = 1_000;

#[derive(Insertable)]
#[diesel(table_name = session_events)]
struct NewRow<'a> {
    event_id: String,
    kind: &'a str,
    occurred_at: NaiveDateTime,
    user_id: &'a str,
    session_id: &'a str,
    data: String,
}

/// Records `events`. Call it inside the transaction of the change they
/// record, as its last statement: on Postgres it takes the ordering lock,
/// held until that transaction ends, so ids are handed out in commit order.
/// (It opens a transaction of its own when called outside one.)
pub fn append(conn: &mut Conn, events: &[Event]) -> DbResult<()> {
    if events.is_empty() {
        return Ok(());
    }
    conn.transaction(|conn| {
        #[cfg(feature = "postgres")]
        if let crate::db::AnyConnection::Postgresql(pg) = conn {
            diesel::sql_query("SELECT pg_advisory_xact_lock($1)")
                .bind::<diesel::sql_types::BigInt, _>(ORDER_LOCK)
                .execute(pg)?;
        }
        let rows: Vec<NewRow> = events
            .iter()
            .map(|event| NewRow {
                event_id: format!("evt_{}", uuid::Uuid::new_v4().simple()),
                kind: event.kind.as_str(),
                occurred_at: event.at,
                user_id: &event.user_id,
                session_id: &event.session_id,
                data: Value::Object(event.data.clone()).to_string(),
            })
            .collect();
        // Many rows per statement (ending every session of a user, the
        // sweep), in chunks below SQLite's limit on bound parameters.
        // (The connection enum has no multi-row INSERT: each backend's own.)
        for chunk in rows.chunks(ROWS_PER_INSERT) {
            let insert = diesel::insert_into(session_events::table).values(chunk);
            match conn {
                #[cfg(feature = "postgres")]
                crate::db::AnyConnection::Postgresql(pg) => insert.execute(pg)?,
                crate::db::AnyConnection::Sqlite(sqlite) => insert.execute(sqlite)?,
            };
        }
        Ok::<_, diesel::result::Error>(())
    })
    .db()
}

/// Up to `limit` events after id `after`, oldest first.
pub fn after(conn: &mut Conn, after: i64, limit: i64) -> DbResult<Vec<StoredEvent>> {
    session_events::table
        .filter(session_events::id.gt(after))
        .order(session_events::id.asc())
        .limit(limit)
        .select(StoredEvent::as_select())
        .load(conn)
        .db()
}

/// The newest event's id, or 0.
pub fn last_id(conn: &mut Conn) -> DbResult<i64> {
    let last: Option<i64> = session_events::table
        .select(diesel::dsl::max(session_events::id))
        .first(conn)
        .db()?;
    Ok(last.unwrap_or(0))
}

/// Which events an audit page shows.
#[derive(Clone, Debug, Default)]
pub struct AuditQuery {
    pub user_id: Option<String>,
    pub kinds: Vec<String>,
    pub since: Option<NaiveDateTime>,
    pub until: Option<NaiveDateTime>,
    /// Only events older than this id (the cursor of the page before).
    pub before_id: Option<i64>,
    pub limit: i64,
}

/// Events matching `query`, newest first.
pub fn audit(conn: &mut Conn, query: &AuditQuery) -> DbResult<Vec<StoredEvent>> {
    let mut select = session_events::table.into_boxed();
    if let Some(user_id) = &query.user_id {
        select = select.filter(session_events::user_id.eq(user_id));
    }
    if !query.kinds.is_empty() {
        select = select.filter(session_events::kind.eq_any(&query.kinds));
    }
    if let Some(since) = query.since {
        select = select.filter(session_events::occurred_at.ge(since));
    }
    if let Some(until) = query.until {
        select = select.filter(session_events::occurred_at.lt(until));
    }
    if let Some(before) = query.before_id {
        select = select.filter(session_events::id.lt(before));
    }
    select
        .order(session_events::id.desc())
        .limit(query.limit)
        .select(StoredEvent::as_select())
        .load(conn)
        .db()
}

/// Deletes events that happened before `before`; returns how many.
pub fn purge(conn: &mut Conn, before: NaiveDateTime) -> DbResult<usize> {
    diesel::delete(session_events::table.filter(session_events::occurred_at.lt(before)))
        .execute(conn)
        .db()
}
