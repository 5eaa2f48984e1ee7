//! Lists without keyset paging: one user's active sessions for the admin
//! surface; the newest sessions for the JSON action API and the CLI.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::schema::{sessions, users};
use crate::db::{Conn, DbResult, IntoDbResult};
use crate::store::sessions::{active, Session};

/// A user's active sessions, newest first, and how many there are.
pub fn active_sessions_of_user(
    conn: &mut Conn,
    user_id: i64,
    offset: i64,
    limit: i64,
    now: NaiveDateTime,
) -> DbResult<(Vec<Session>, i64)> {
    let active = || {
        sessions::table
            .filter(sessions::user_id.eq(user_id))
            .filter(active(now))
    };
    let total: i64 = active().count().get_result(conn).db()?;
    let rows = active()
        .order_by((sessions::login_at.desc(), sessions::id.desc()))
        .offset(offset)
        .limit(limit)
        .select(Session::as_select())
        .load(conn)
        .db()?;
    Ok((rows, total))
}

/// The most sessions one `listSessions` or `describeSessions` answer holds,
/// newest first; a client narrows a longer list with `usernameFilter`.
pub const MAX_LISTED: i64 = 1_000;

/// Which sessions [`newest`] lists.
#[derive(Clone, Debug, Default)]
pub struct Newest<'a> {
    /// Only this user's sessions.
    pub owner: Option<i64>,
    /// When not empty, only the users with these case-folded names.
    pub username_keys: &'a [String],
    /// Ended and expired sessions too (the CLI's `--all`).
    pub include_ended: bool,
    /// Only sessions of users who may log in.
    pub active_users_only: bool,
    pub limit: i64,
}

/// Sessions with their owners' usernames, newest first (ties by id): the
/// JSON action API's lists and the CLI's.
pub fn newest(
    conn: &mut Conn,
    request: &Newest<'_>,
    now: NaiveDateTime,
) -> DbResult<Vec<(Session, String)>> {
    let mut query = sessions::table
        .inner_join(users::table)
        .select((Session::as_select(), users::username))
        .order((sessions::login_at.desc(), sessions::id.desc()))
        .limit(request.limit)
        .into_boxed();
    if let Some(owner) = request.owner {
        query = query.filter(sessions::user_id.eq(owner));
    }
    if !request.username_keys.is_empty() {
        query = query.filter(users::username_key.eq_any(request.username_keys.to_vec()));
    }
    if !request.include_ended {
        query = query.filter(active(now));
    }
    if request.active_users_only {
        query = query.filter(users::active.eq(true));
    }
    query.load(conn).db()
}
