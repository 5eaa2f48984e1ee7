//! Statements that authenticate the caller and do a hot request's work at
//! once, so the request costs the store one round trip: the caller's own
//! list (`sessions/list` without a filter or a cursor), one of the
//! caller's sessions (`sessions/info`), `listSessions` for a caller who
//! sees only their own sessions, and the first pages of everyone's list
//! for an administrator past the second factor (`list.all`).
//!
//! The caller's session is read as `me` (and, for everyone's list, its
//! user as `me_user`), so the token is checked by the statement that
//! reads the answer. Each answers `None` when it found no row, which is
//! not enough to say why (wrong credentials, a missing permission or
//! second factor, a page past the end, an unknown session): the caller
//! then takes the ordinary path, which tells these apart.

use chrono::NaiveDateTime;
use diesel::dsl::count;
use diesel::prelude::*;
use diesel::sql_types::Text;

use super::page::{order_by_key, ordered_by, ListedSession, Page, SessionSummary};
use crate::auth::permissions::{self, Permission};
use crate::db::schema::{session_counters, sessions, users};
use crate::db::{collate_c, Conn, DbResult, IntoDbResult};
use crate::domain::listing::{Direction, Sort, SortKey};
use crate::domain::token::TokenHash;
use crate::store::session_counters::{coalesce, UNENDED};
use crate::store::sessions::{active, LiveSession, Session};
use crate::store::users::User;

diesel::alias!(
    sessions as me: Me,
    users as me_user: MeUser,
    sessions as expired: Expired
);

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

/// [`page_of`] for rows that begin with a session's summary and its
/// user's guid, username and name.
macro_rules! listed_page {
    ($rows:expr, $limit:expr, $total:expr) => {
        page_of(
            $rows,
            $limit,
            $total,
            |(session, user_guid, username, name, ..)| ListedSession {
                session,
                user_guid,
                username,
                name,
            },
        )
    };
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
    query = ordered_by!(query, sort);
    let rows: Vec<OwnRow> = query.offset(offset).limit(limit + 1).load(conn).db()?;
    let Some((_, _, _, _, me_columns, total)) = rows.first().cloned() else {
        return Ok(None);
    };
    let page = listed_page!(rows, limit, total);
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

type EveryoneRow = (
    SessionSummary,
    String,
    String,
    String,
    Option<i64>,
    Option<NaiveDateTime>,
    i64,
);

/// The caller of everyone's list, as that list's statement reads them.
pub struct EveryoneCaller {
    /// Their session's row id.
    pub id: i64,
    /// When their session was last marked active.
    pub last_activity_at: NaiveDateTime,
}

/// For the caller behind `user_guid` and `token_hash` if their roles grant
/// `permission` and their session passed the second factor recently: one
/// page of everyone's active sessions, newest first (or oldest, as `sort`
/// says; its keys must be `loginAt` alone), with the total from the
/// session counters (the same figure `page` gives).
///
/// The caller is checked by an uncorrelated `EXISTS`, which Postgres runs
/// once before the page (a one-time filter: a refused caller costs no row
/// of the list), so the page keeps walking the login-time index. (Joined
/// to the rows instead, the caller's session shares no column with them,
/// and Postgres plans that join first and sorts every active session
/// before cutting the page: 0.5 s at a million sessions.)
#[allow(clippy::too_many_arguments)]
pub fn everyone_page(
    conn: &mut Conn,
    user_guid: &str,
    token_hash: &TokenHash,
    permission: Permission,
    sort: &Sort,
    offset: i64,
    limit: i64,
    now: NaiveDateTime,
) -> DbResult<Option<(EveryoneCaller, Page)>> {
    if sort.keys().iter().any(|(key, _)| *key != SortKey::LoginAt) {
        return Ok(None);
    }
    // One role grants each permission today; were it more, the ordinary
    // path would answer.
    let [role] = permissions::roles_granting(permission)[..] else {
        return Ok(None);
    };
    let caller = me
        .inner_join(me_user.on(me_user.field(users::id).eq(me.field(sessions::user_id))))
        .filter(me_is_live!(token_hash, now))
        .filter(me.field(sessions::two_factor_until).gt(now))
        .filter(me_user.field(users::guid).eq(user_guid.to_owned()))
        .filter(me_user.field(users::active).eq(true))
        .filter(
            ",".into_sql::<Text>()
                .concat(me_user.field(users::roles))
                .concat(",")
                .like(format!("%,{role},%")),
        );
    let caller_id = caller.clone().select(me.field(sessions::id)).single_value();
    let caller_seen = caller
        .clone()
        .select(me.field(sessions::last_activity_at))
        .single_value();
    let unended = session_counters::table
        .filter(session_counters::name.eq(UNENDED))
        .select(session_counters::value)
        .single_value();
    let expired_unended = expired
        .filter(expired.field(sessions::logout_at).is_null())
        .filter(expired.field(sessions::expires_at).le(now))
        .count()
        .single_value();
    let total = coalesce(unended, 0i64) - coalesce(expired_unended, 0i64);
    let mut query = sessions::table
        .inner_join(users::table)
        .filter(diesel::dsl::exists(caller))
        .filter(active(now))
        .select((
            SessionSummary::as_select(),
            users::guid,
            users::username,
            users::name,
            caller_id,
            caller_seen,
            total,
        ))
        .into_boxed();
    query = ordered_by!(query, sort);
    let rows: Vec<EveryoneRow> = query.offset(offset).limit(limit + 1).load(conn).db()?;
    let Some((_, _, _, _, Some(id), Some(last_activity_at), total)) = rows.first().cloned() else {
        return Ok(None);
    };
    let page = listed_page!(rows, limit, total);
    Ok(Some((
        EveryoneCaller {
            id,
            last_activity_at,
        },
        page,
    )))
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
