//! `sessions`: every login on every surface is one row here. All SQL on
//! this table lives in this module: lookups here, changes in `update`,
//! keyset pages in `page`, the other lists in `lists`, seeding in `bulk`.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::schema::{sessions, users};
use crate::db::{Conn, DbResult, IntoDbResult};
use crate::domain::clock;
use crate::domain::device::Device;
use crate::domain::token::{AuthToken, TokenHash};
use crate::store::users::User;

pub mod bulk;
pub mod by_user;
pub mod fused;
pub mod lists;
pub mod page;
mod update;

pub use update::{
    alter, end, end_all_for_user, end_expired, extend, purge_ended, revoke_active,
    set_two_factor_until, touch, SessionChanges,
};

#[derive(Clone, Debug, Queryable, Selectable)]
#[diesel(table_name = sessions)]
pub struct Session {
    pub id: i64,
    pub session_id: String,
    pub user_id: i64,
    pub token_hash: String,
    pub token_hint: String,
    pub description: String,
    pub device_type: String,
    pub device_name: String,
    pub device_version: String,
    pub device_long_version: String,
    pub os_name: String,
    pub os_version: String,
    pub device_category: String,
    pub ip: String,
    pub host: String,
    pub instance_id: String,
    pub login_at: NaiveDateTime,
    pub last_activity_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
    pub idle_timeout_seconds: i64,
    pub permanent: bool,
    pub logout_at: Option<NaiveDateTime>,
    pub logout_by: Option<String>,
    pub two_factor_until: Option<NaiveDateTime>,
    pub search_term: String,
    pub api_defaults: String,
    pub updated_at: NaiveDateTime,
    pub device_key: String,
    pub new_device: bool,
}

/// What authenticating a request reads of its session: enough to mark
/// activity and to check the second factor, none of what lists show.
#[derive(Clone, Debug, Queryable, Selectable)]
#[diesel(table_name = sessions)]
pub struct LiveSession {
    pub id: i64,
    pub session_id: String,
    pub login_at: NaiveDateTime,
    pub last_activity_at: NaiveDateTime,
    pub idle_timeout_seconds: i64,
    pub permanent: bool,
    pub two_factor_until: Option<NaiveDateTime>,
}

impl From<&Session> for LiveSession {
    fn from(session: &Session) -> Self {
        LiveSession {
            id: session.id,
            session_id: session.session_id.clone(),
            login_at: session.login_at,
            last_activity_at: session.last_activity_at,
            idle_timeout_seconds: session.idle_timeout_seconds,
            permanent: session.permanent,
            two_factor_until: session.two_factor_until,
        }
    }
}

#[derive(Clone, Debug, Insertable)]
#[diesel(table_name = sessions, treat_none_as_default_value = false)]
pub struct NewSession {
    pub session_id: String,
    pub user_id: i64,
    pub token_hash: String,
    pub token_hint: String,
    pub description: String,
    pub device_type: String,
    pub device_name: String,
    pub device_version: String,
    pub device_long_version: String,
    pub os_name: String,
    pub os_version: String,
    pub device_category: String,
    pub ip: String,
    pub host: String,
    pub instance_id: String,
    pub login_at: NaiveDateTime,
    pub last_activity_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
    pub idle_timeout_seconds: i64,
    pub permanent: bool,
    pub two_factor_until: Option<NaiveDateTime>,
    pub search_term: String,
    pub api_defaults: String,
    pub updated_at: NaiveDateTime,
    pub device_key: String,
    pub new_device: bool,
}

impl NewSession {
    /// A row for a session of user `user_id` (guid `user_guid`) behind
    /// `token`, from `device`, started `at`: the device spread into its
    /// columns and the search term made from them. Where it came from, its
    /// lifetime and its options are the caller's to fill in.
    pub fn new(
        session_id: String,
        (user_id, user_guid): (i64, &str),
        token: &AuthToken,
        device: Device,
        at: NaiveDateTime,
    ) -> Self {
        let search_term = device.search_term(&session_id, user_guid);
        NewSession {
            session_id,
            user_id,
            token_hash: token.hash().as_str().to_owned(),
            token_hint: token.hint(),
            description: String::new(),
            device_type: device.kind,
            device_name: device.name,
            device_version: device.version,
            device_long_version: device.long_version,
            os_name: device.os_name,
            os_version: device.os_version,
            device_category: device.category,
            ip: String::new(),
            host: String::new(),
            instance_id: String::new(),
            login_at: at,
            last_activity_at: at,
            expires_at: at,
            idle_timeout_seconds: 0,
            permanent: false,
            two_factor_until: None,
            search_term,
            api_defaults: "{}".into(),
            updated_at: at,
            device_key: String::new(),
            new_device: false,
        }
    }
}

/// How long sessions live, from the settings.
#[derive(Clone, Copy, Debug)]
pub struct Lifetime {
    pub max_lifetime_seconds: i64,
    pub activity_interval_seconds: i64,
}

impl Lifetime {
    /// When a session with this idle timeout, last seen at `last_activity`,
    /// expires: the earlier of its idle and absolute limits. An idle timeout
    /// of 0 means only the absolute limit applies.
    pub fn expiry(
        &self,
        permanent: bool,
        login_at: NaiveDateTime,
        last_activity: NaiveDateTime,
        idle_timeout_seconds: i64,
    ) -> NaiveDateTime {
        if permanent {
            return clock::far_future();
        }
        let absolute = clock::plus_seconds(login_at, self.max_lifetime_seconds);
        if idle_timeout_seconds <= 0 {
            return absolute;
        }
        absolute.min(clock::plus_seconds(last_activity, idle_timeout_seconds))
    }
}

/// The contract's "active": not ended and not expired. Every query about
/// active sessions uses this one condition.
#[diesel::dsl::auto_type]
pub fn active(now: NaiveDateTime) -> _ {
    sessions::logout_at
        .is_null()
        .and(sessions::expires_at.gt(now))
}

pub fn insert(conn: &mut Conn, new: &NewSession) -> DbResult<Session> {
    diesel::insert_into(sessions::table)
        .values(new)
        .execute(conn)
        .db()?;
    sessions::table
        .filter(sessions::token_hash.eq(&new.token_hash))
        .select(Session::as_select())
        .first(conn)
        .db()
}

/// The active session behind a token, with its user, if the token belongs to
/// the user with guid `user_guid`.
pub fn authenticate(
    conn: &mut Conn,
    user_guid: &str,
    token_hash: &TokenHash,
    now: NaiveDateTime,
) -> DbResult<Option<(LiveSession, User)>> {
    sessions::table
        .inner_join(users::table)
        .filter(sessions::token_hash.eq(token_hash.as_str()))
        .filter(users::guid.eq(user_guid))
        .filter(users::active.eq(true))
        .filter(active(now))
        .select((LiveSession::as_select(), User::as_select()))
        .first(conn)
        .optional()
        .db()
}

/// What authentication reads of session `id`.
pub fn live_by_id(conn: &mut Conn, id: i64) -> DbResult<Option<LiveSession>> {
    sessions::table
        .find(id)
        .select(LiveSession::as_select())
        .first(conn)
        .optional()
        .db()
}

/// The active session behind a token, whoever owns it.
pub fn find_active_by_token(
    conn: &mut Conn,
    token_hash: &TokenHash,
    now: NaiveDateTime,
) -> DbResult<Option<(Session, User)>> {
    sessions::table
        .inner_join(users::table)
        .filter(sessions::token_hash.eq(token_hash.as_str()))
        .filter(users::active.eq(true))
        .filter(active(now))
        .select((Session::as_select(), User::as_select()))
        .first(conn)
        .optional()
        .db()
}

/// An active session by its numeric id, with its user.
pub fn find_active_by_id(
    conn: &mut Conn,
    id: i64,
    now: NaiveDateTime,
) -> DbResult<Option<(Session, User)>> {
    sessions::table
        .find(id)
        .inner_join(users::table)
        .filter(active(now))
        .select((Session::as_select(), User::as_select()))
        .first(conn)
        .optional()
        .db()
}

pub fn find_by_session_id(conn: &mut Conn, session_id: &str) -> DbResult<Option<Session>> {
    sessions::table
        .filter(sessions::session_id.eq(session_id))
        .select(Session::as_select())
        .first(conn)
        .optional()
        .db()
}

/// How many active sessions a user has.
pub fn count_active_for_user(conn: &mut Conn, user_id: i64, now: NaiveDateTime) -> DbResult<i64> {
    sessions::table
        .filter(sessions::user_id.eq(user_id))
        .filter(active(now))
        .count()
        .get_result(conn)
        .db()
}

/// The `count` least recently active sessions of a user: (id, sessionId).
pub fn least_recently_active(
    conn: &mut Conn,
    user_id: i64,
    now: NaiveDateTime,
    count: i64,
) -> DbResult<Vec<(i64, String)>> {
    sessions::table
        .filter(sessions::user_id.eq(user_id))
        .filter(active(now))
        .order((sessions::last_activity_at.asc(), sessions::id.asc()))
        .limit(count)
        .select((sessions::id, sessions::session_id))
        .load(conn)
        .db()
}

/// Whether the user logged in from the device `key` since `since`.
pub fn device_seen(
    conn: &mut Conn,
    user_id: i64,
    key: &str,
    since: NaiveDateTime,
) -> DbResult<bool> {
    diesel::select(diesel::dsl::exists(
        sessions::table
            .filter(sessions::user_id.eq(user_id))
            .filter(sessions::device_key.eq(key))
            .filter(sessions::login_at.ge(since)),
    ))
    .get_result(conn)
    .db()
}

/// An active session by `sessionId`, with its owner, for `info.admin`.
pub fn find_active_by_session_id(
    conn: &mut Conn,
    session_id: &str,
    now: NaiveDateTime,
) -> DbResult<Option<(Session, User)>> {
    sessions::table
        .inner_join(users::table)
        .filter(sessions::session_id.eq(session_id))
        .filter(active(now))
        .select((Session::as_select(), User::as_select()))
        .first(conn)
        .optional()
        .db()
}

/// A session in any state with its owner, for `info`.
pub fn find_with_owner(
    conn: &mut Conn,
    session_id: &str,
    owner: Option<i64>,
) -> DbResult<Option<(Session, User)>> {
    let mut query = sessions::table
        .inner_join(users::table)
        .filter(sessions::session_id.eq(session_id.to_owned()))
        .select((Session::as_select(), User::as_select()))
        .into_boxed();
    if let Some(owner) = owner {
        query = query.filter(sessions::user_id.eq(owner));
    }
    query.first(conn).optional().db()
}
