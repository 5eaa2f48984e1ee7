//! Lists without keyset paging: users with active sessions (counted in
//! SQL) and one user's active sessions for the admin surface; the newest
//! sessions for the JSON action API and the CLI.

use chrono::NaiveDateTime;
use diesel::dsl::{count, exists};
use diesel::prelude::*;

use crate::db::schema::{sessions, users};
use crate::db::{collate_c, Conn, DbResult, IntoDbResult};
use crate::domain::listing::Direction;
use crate::store::sessions::{active, Session};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UserSort {
    UserName,
    SessionCount,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserSessionCount {
    pub guid: String,
    pub username: String,
    pub roles: String,
    pub session_count: i64,
}

/// Users with at least one active session, one row each, and how many such
/// users there are. Sorted by name, it walks the users in order and counts
/// only the page's sessions; sorted by count, every active session is
/// grouped.
pub fn users_with_active_sessions(
    conn: &mut Conn,
    sort: UserSort,
    order: Direction,
    offset: i64,
    limit: i64,
    now: NaiveDateTime,
) -> DbResult<(Vec<UserSessionCount>, i64)> {
    // The active sessions of the `users` row of the outer query: a
    // correlated subquery, served by the `(user_id, expires_at)` partial index.
    let of_outer_user = || {
        sessions::table
            .filter(sessions::user_id.eq(users::id))
            .filter(active(now))
    };
    let total: i64 = users::table
        .filter(exists(of_outer_user()))
        .count()
        .get_result(conn)
        .db()?;
    let rows: Vec<(String, String, String, i64)> = match sort {
        UserSort::UserName => {
            let query = users::table
                .filter(exists(of_outer_user()))
                .select((
                    users::guid,
                    users::username,
                    users::roles,
                    of_outer_user().count().single_value().assume_not_null(),
                ))
                .into_boxed();
            let query = match order {
                Direction::Asc => {
                    query.order_by((collate_c(users::username_key).asc(), users::id.asc()))
                }
                Direction::Desc => {
                    query.order_by((collate_c(users::username_key).desc(), users::id.desc()))
                }
            };
            query.offset(offset).limit(limit).load(conn).db()?
        }
        UserSort::SessionCount => {
            let query = sessions::table
                .inner_join(users::table)
                .filter(active(now))
                .group_by(users::id)
                .select((
                    users::guid,
                    users::username,
                    users::roles,
                    count(sessions::id),
                ))
                .into_boxed();
            let query = match order {
                Direction::Asc => query.order_by((count(sessions::id).asc(), users::id.asc())),
                Direction::Desc => query.order_by((count(sessions::id).desc(), users::id.desc())),
            };
            query.offset(offset).limit(limit).load(conn).db()?
        }
    };
    let rows = rows
        .into_iter()
        .map(|(guid, username, roles, session_count)| UserSessionCount {
            guid,
            username,
            roles,
            session_count,
        })
        .collect();
    Ok((rows, total))
}

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
