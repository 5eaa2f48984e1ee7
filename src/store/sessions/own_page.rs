//! The caller's own list in one statement: the caller's session and user,
//! the page, and the total, for the hottest list (`sessions/list` without a
//! filter or a cursor). The caller's session is joined in as `me`, so the
//! token is checked by the same statement that reads the page, and the
//! total is a window count over every match, taken before the page is cut.

use chrono::NaiveDateTime;
use diesel::dsl::count;
use diesel::prelude::*;

use super::page::{order_by_key, ListedSession, Page, SessionSummary};
use crate::db::schema::{sessions, users};
use crate::db::{collate_c, Conn, DbResult, IntoDbResult};
use crate::domain::listing::{Direction, Sort, SortKey};
use crate::domain::token::TokenHash;
use crate::store::sessions::{active, LiveSession};

/// What the statement reads of the caller's session, in `LiveSession`'s order.
type MeColumns = (
    i64,
    String,
    NaiveDateTime,
    NaiveDateTime,
    i64,
    bool,
    Option<NaiveDateTime>,
);

type Row = (SessionSummary, String, String, String, MeColumns, i64);

/// The caller's session behind `user_guid` and `token_hash` (its user must
/// be active) and one page of their
/// active sessions with the total, or `None` when the statement found no
/// row: the credentials are wrong, or the page is past the end. The caller
/// then takes the ordinary path, which tells the two apart.
pub fn own_page(
    conn: &mut Conn,
    user_guid: &str,
    token_hash: &TokenHash,
    sort: &Sort,
    offset: i64,
    limit: i64,
    now: NaiveDateTime,
) -> DbResult<Option<(LiveSession, Page)>> {
    let me = diesel::alias!(sessions as me);
    let mut query = sessions::table
        .inner_join(users::table)
        .inner_join(me.on(me.field(sessions::user_id).eq(sessions::user_id)))
        .filter(
            me.field(sessions::token_hash)
                .eq(token_hash.as_str().to_owned()),
        )
        .filter(me.field(sessions::logout_at).is_null())
        .filter(me.field(sessions::expires_at).gt(now))
        .filter(users::guid.eq(user_guid.to_owned()))
        .filter(users::active.eq(true))
        .filter(active(now))
        .select((
            SessionSummary::as_select(),
            users::guid,
            users::username,
            users::name,
            me.fields((
                sessions::id,
                sessions::session_id,
                sessions::login_at,
                sessions::last_activity_at,
                sessions::idle_timeout_seconds,
                sessions::permanent,
                sessions::two_factor_until,
            )),
            count(sessions::id).over(),
        ))
        .into_boxed();
    for (key, direction) in sort.keys() {
        query = order_by_key!(query, *key, *direction);
    }
    query = match sort.id_direction() {
        Direction::Asc => query.then_order_by(sessions::id.asc()),
        Direction::Desc => query.then_order_by(sessions::id.desc()),
    };
    let rows: Vec<Row> = query.offset(offset).limit(limit + 1).load(conn).db()?;
    let Some((_, _, _, _, me_columns, total)) = rows.first().cloned() else {
        return Ok(None);
    };
    let (
        id,
        session_id,
        login_at,
        last_activity_at,
        idle_timeout_seconds,
        permanent,
        two_factor_until,
    ) = me_columns;
    let caller = LiveSession {
        id,
        session_id,
        login_at,
        last_activity_at,
        idle_timeout_seconds,
        permanent,
        two_factor_until,
    };
    let more = rows.len() as i64 > limit;
    let rows = rows
        .into_iter()
        .take(limit as usize)
        .map(|(session, user_guid, username, name, _, _)| ListedSession {
            session,
            user_guid,
            username,
            name,
        })
        .collect();
    Ok(Some((caller, Page { rows, total, more })))
}
