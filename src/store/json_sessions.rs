//! `sessions` as the JSON action API (`POST /api`) reads and changes them:
//! listing with usernames, forced activity, and altering a live session.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::schema::{sessions, users};
use crate::db::{Conn, DbResult, IntoDbResult};
use crate::store::sessions::active;
use crate::store::sessions::{Lifetime, Session};

/// The most sessions one `listSessions` or `describeSessions` answer holds,
/// newest first; a client narrows a longer list with `usernameFilter`.
pub const MAX_LISTED: i64 = 1_000;

/// Active sessions with their owners' usernames, newest first (ties by id).
/// `owner` limits the list to one user; `username_keys`, when not empty, to
/// the users with those case-folded names.
pub fn list_active(
    conn: &mut Conn,
    owner: Option<i64>,
    username_keys: &[String],
    now: NaiveDateTime,
) -> DbResult<Vec<(Session, String)>> {
    let mut query = sessions::table
        .inner_join(users::table)
        .filter(active(now))
        .filter(users::active.eq(true))
        .select((Session::as_select(), users::username))
        .order((sessions::login_at.desc(), sessions::id.desc()))
        .limit(MAX_LISTED)
        .into_boxed();
    if let Some(owner) = owner {
        query = query.filter(sessions::user_id.eq(owner));
    }
    if !username_keys.is_empty() {
        query = query.filter(users::username_key.eq_any(username_keys.to_vec()));
    }
    query.load(conn).db()
}

/// Records activity now, whatever the activity interval, and moves the idle
/// expiry forward: `pingSession` exists to keep a session alive. False when
/// the session ended meanwhile.
pub fn extend(
    conn: &mut Conn,
    session: &Session,
    lifetime: &Lifetime,
    now: NaiveDateTime,
) -> DbResult<bool> {
    let expires_at = lifetime.expiry(
        session.permanent,
        session.login_at,
        now,
        session.idle_timeout_seconds,
    );
    let updated = diesel::update(sessions::table.find(session.id).filter(active(now)))
        .set((
            sessions::last_activity_at.eq(now),
            sessions::expires_at.eq(expires_at),
            sessions::updated_at.eq(now),
        ))
        .execute(conn)
        .db()?;
    Ok(updated == 1)
}

/// What `alterSession` may change. `None` keeps the stored value.
#[derive(Clone, Debug, Default)]
pub struct SessionChanges {
    pub description: Option<String>,
    pub idle_timeout_seconds: Option<i64>,
    /// Only ever `Some(false)`: a session can stop being permanent, never become it.
    pub end_permanence: bool,
    pub api_defaults: Option<String>,
}

/// Applies `changes` to a live session, counts as activity, and recomputes
/// the expiry. Returns the changed session, or `None` when it ended
/// meanwhile (an ended session stays ended).
pub fn alter(
    conn: &mut Conn,
    session: &Session,
    changes: SessionChanges,
    lifetime: &Lifetime,
    now: NaiveDateTime,
) -> DbResult<Option<Session>> {
    let permanent = session.permanent && !changes.end_permanence;
    let idle_timeout_seconds = changes
        .idle_timeout_seconds
        .unwrap_or(session.idle_timeout_seconds);
    let expires_at = lifetime.expiry(permanent, session.login_at, now, idle_timeout_seconds);
    let description = changes
        .description
        .unwrap_or_else(|| session.description.clone());
    let api_defaults = changes
        .api_defaults
        .unwrap_or_else(|| session.api_defaults.clone());
    let updated = diesel::update(sessions::table.find(session.id).filter(active(now)))
        .set((
            sessions::description.eq(description),
            sessions::idle_timeout_seconds.eq(idle_timeout_seconds),
            sessions::permanent.eq(permanent),
            sessions::api_defaults.eq(api_defaults),
            sessions::last_activity_at.eq(now),
            sessions::expires_at.eq(expires_at),
            sessions::updated_at.eq(now),
        ))
        .execute(conn)
        .db()?;
    if updated != 1 {
        return Ok(None);
    }
    sessions::table
        .find(session.id)
        .select(Session::as_select())
        .first(conn)
        .optional()
        .db()
}
