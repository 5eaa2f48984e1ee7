//! Statements that authenticate the caller and do a hot request's work at
//! once, so the request costs the store one round trip: the caller's own
//! list (`sessions/list` without a filter or a cursor), one of the
//! caller's sessions (`sessions/info`), and `listSessions` for a caller
//! who sees only their own sessions.
//!
//! The caller's session is joined in as `me` on the rows' owner, so the
//! token is checked by the statement that reads the answer. Each answers
//! `None` when it found no row, which is not enough to say why (wrong
//! credentials, a page past the end, an unknown session): the caller then
//! takes the ordinary path, which tells these apart.
//!
//! Everyone's list (`list.all`) is not read this way: with the caller's
//! session joined on nothing the rows share, Postgres plans that join
//! first and sorts every active session before cutting the page (0.5 s at
//! a million sessions, where the index walk takes 1 ms).

use chrono::NaiveDateTime;
use diesel::dsl::count;
use diesel::prelude::*;
use diesel::sql_types::Text;

use super::page::{order_by_key, ListedSession, Page, SessionSummary};
use crate::auth::permissions::{self, Permission};
use crate::db::schema::{sessions, users};
use crate::db::{collate_c, Conn, DbResult, IntoDbResult};
use crate::domain::listing::{Direction, Sort, SortKey};
use crate::domain::token::TokenHash;
use crate::store::sessions::{active, LiveSession, Session};
use crate::store::users::User;

diesel::alias!(sessions as me: Me);

/// What a statement reads of the caller's session, in `LiveSession`'s order.
type MeColumns = (
    i64,
    String,
    NaiveDateTime,
    NaiveDateTime,
    i64,
    bool,
    Option<NaiveDateTime>,
);

/// The caller's session as `LiveSession` reads it, from the `me` alias.
macro_rules! me_columns {
    () => {
        me.fields((
            sessions::id,
            sessions::session_id,
            sessions::login_at,
            sessions::last_activity_at,
            sessions::idle_timeout_seconds,
            sessions::permanent,
            sessions::two_factor_until,
        ))
    };
}

/// `me` is the live session behind `token_hash`.
macro_rules! me_is_live {
    ($token_hash:expr, $now:expr) => {
        me.field(sessions::token_hash)
            .eq($token_hash.as_str().to_owned())
            .and(me.field(sessions::logout_at).is_null())
            .and(me.field(sessions::expires_at).gt($now))
    };
}

fn live_session(columns: MeColumns) -> LiveSession {
    let (
        id,
        session_id,
        login_at,
        last_activity_at,
        idle_timeout_seconds,
        permanent,
        two_factor_until,
    ) = columns;
    LiveSession {
        id,
        session_id,
        login_at,
        last_activity_at,
        idle_timeout_seconds,
        permanent,
        two_factor_until,
    }
}

/// Cuts `limit + 1` rows into a page.
fn page_of<T>(rows: Vec<T>, limit: i64, total: i64, listed: impl Fn(T) -> ListedSession) -> Page {
    let more = rows.len() as i64 > limit;
    let rows = rows.into_iter().take(limit as usize).map(listed).collect();
    Page { rows, total, more }
}

type OwnRow = (SessionSummary, String, String, String, MeColumns, i64);

/// The caller's session behind `user_guid` and `token_hash` (its user must
/// be active) and one page of their active sessions with the total (a
/// window count over every match, taken before the page is cut).
pub fn own_page(
    conn: &mut Conn,
    user_guid: &str,
    token_hash: &TokenHash,
    sort: &Sort,
    offset: i64,
    limit: i64,
    now: NaiveDateTime,
) -> DbResult<Option<(LiveSession, Page)>> {
    let mut query = sessions::table
        .inner_join(users::table)
        .inner_join(me.on(me.field(sessions::user_id).eq(sessions::user_id)))
        .filter(me_is_live!(token_hash, now))
        .filter(users::guid.eq(user_guid.to_owned()))
        .filter(users::active.eq(true))
        .filter(active(now))
        .select((
            SessionSummary::as_select(),
            users::guid,
            users::username,
            users::name,
            me_columns!(),
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
    let rows: Vec<OwnRow> = query.offset(offset).limit(limit + 1).load(conn).db()?;
    let Some((_, _, _, _, me_columns, total)) = rows.first().cloned() else {
        return Ok(None);
    };
    let page = page_of(
        rows,
        limit,
        total,
        |(session, user_guid, username, name, ..)| ListedSession {
            session,
            user_guid,
            username,
            name,
        },
    );
    Ok(Some((live_session(me_columns), page)))
}

/// The caller's session behind `user_guid` and `token_hash` (its user must
/// be active) and their session `session_id`, active or ended, in full
/// with its owner.
pub fn own_session(
    conn: &mut Conn,
    user_guid: &str,
    token_hash: &TokenHash,
    session_id: &str,
    now: NaiveDateTime,
) -> DbResult<Option<(LiveSession, Session, User)>> {
    let found: Option<(Session, User, MeColumns)> = sessions::table
        .inner_join(users::table)
        .inner_join(me.on(me.field(sessions::user_id).eq(sessions::user_id)))
        .filter(me_is_live!(token_hash, now))
        .filter(users::guid.eq(user_guid.to_owned()))
        .filter(users::active.eq(true))
        .filter(sessions::session_id.eq(session_id.to_owned()))
        .select((Session::as_select(), User::as_select(), me_columns!()))
        .first(conn)
        .optional()
        .db()?;
    Ok(found.map(|(session, user, me_columns)| (live_session(me_columns), session, user)))
}

/// A session `listSessions` shows: its id, description and token hint,
/// and its user's name.
pub type NewestRow = (i64, String, String, String);

/// The caller's newest sessions, read with the caller's session.
pub struct OwnNewest {
    pub caller: LiveSession,
    /// The caller's session's stored API defaults.
    pub api_defaults: String,
    pub rows: Vec<NewestRow>,
}

/// For the caller behind `token_hash` (their user active) whose roles do
/// not grant `everyone` (who would see every user's sessions): their
/// active sessions, newest first (ties by id), at most `limit`; with
/// `username_keys`, only if their case-folded username is one of them.
pub fn own_newest(
    conn: &mut Conn,
    token_hash: &TokenHash,
    everyone: Permission,
    username_keys: &[String],
    limit: i64,
    now: NaiveDateTime,
) -> DbResult<Option<OwnNewest>> {
    let [role] = permissions::roles_granting(everyone)[..] else {
        return Ok(None);
    };
    let sees_everyone = ","
        .into_sql::<Text>()
        .concat(users::roles)
        .concat(",")
        .like(format!("%,{role},%"));
    let mut query = sessions::table
        .inner_join(users::table)
        .inner_join(me.on(me.field(sessions::user_id).eq(sessions::user_id)))
        .filter(me_is_live!(token_hash, now))
        .filter(users::active.eq(true))
        .filter(diesel::dsl::not(sees_everyone))
        .filter(active(now))
        .select((
            (
                sessions::id,
                sessions::description,
                sessions::token_hint,
                users::username,
            ),
            me_columns!(),
            me.field(sessions::api_defaults),
        ))
        .order((sessions::login_at.desc(), sessions::id.desc()))
        .limit(limit)
        .into_boxed();
    if !username_keys.is_empty() {
        query = query.filter(users::username_key.eq_any(username_keys.to_vec()));
    }
    let rows: Vec<(NewestRow, MeColumns, String)> = query.load(conn).db()?;
    let Some((_, me_columns, api_defaults)) = rows.first().cloned() else {
        return Ok(None);
    };
    Ok(Some(OwnNewest {
        caller: live_session(me_columns),
        api_defaults,
        rows: rows.into_iter().map(|(row, ..)| row).collect(),
    }))
}
