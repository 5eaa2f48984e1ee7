//! Changes to `sessions` rows: activity, alterations, and ending.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::schema::sessions;
use crate::db::{Conn, DbResult, IntoDbResult};
use crate::domain::clock;
use crate::domain::ended_by::EndedBy;
use crate::store::sessions::{active, Lifetime, LiveSession, Session};

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

/// Records activity, at most once per `activity_interval_seconds`, and moves
/// the idle expiry forward. The compare on `last_activity_at` makes
/// concurrent requests write once; the `logout_at` filter keeps an ended
/// session ended.
pub fn touch(
    conn: &mut Conn,
    session: &LiveSession,
    lifetime: &Lifetime,
    now: NaiveDateTime,
) -> DbResult<()> {
    let due = clock::plus_seconds(session.last_activity_at, lifetime.activity_interval_seconds);
    if now < due {
        return Ok(());
    }
    let expires_at = lifetime.expiry(
        session.permanent,
        session.login_at,
        now,
        session.idle_timeout_seconds,
    );
    diesel::update(
        sessions::table
            .find(session.id)
            .filter(sessions::last_activity_at.eq(session.last_activity_at))
            .filter(sessions::logout_at.is_null()),
    )
    .set((
        sessions::last_activity_at.eq(now),
        sessions::expires_at.eq(expires_at),
        sessions::updated_at.eq(now),
    ))
    .execute(conn)
    .db()?;
    Ok(())
}

/// Ends one session. True if this call ended it, false if it had already ended.
pub fn end(conn: &mut Conn, id: i64, by: &EndedBy, now: NaiveDateTime) -> DbResult<bool> {
    let updated = diesel::update(
        sessions::table
            .find(id)
            .filter(sessions::logout_at.is_null()),
    )
    .set((
        sessions::logout_at.eq(now),
        sessions::logout_by.eq(by.stored()),
        sessions::updated_at.eq(now),
    ))
    .execute(conn)
    .db()?;
    Ok(updated == 1)
}

/// Ends one *active* session by its numeric id. False when there is no
/// active session with that id. The admin API and the CLI both revoke here.
pub fn revoke_active(conn: &mut Conn, id: i64, by: &EndedBy, now: NaiveDateTime) -> DbResult<bool> {
    let updated = diesel::update(sessions::table.find(id).filter(active(now)))
        .set((
            sessions::logout_at.eq(now),
            sessions::logout_by.eq(by.stored()),
            sessions::updated_at.eq(now),
        ))
        .execute(conn)
        .db()?;
    Ok(updated == 1)
}

pub fn set_two_factor_until(conn: &mut Conn, id: i64, until: NaiveDateTime) -> DbResult<()> {
    diesel::update(sessions::table.find(id))
        .set(sessions::two_factor_until.eq(until))
        .execute(conn)
        .db()?;
    Ok(())
}

/// Marks sessions whose expiry has passed as ended, at their expiry time.
/// Returns the ended sessions: (sessionId, user id).
pub fn end_expired(conn: &mut Conn, now: NaiveDateTime) -> DbResult<Vec<(String, i64)>> {
    diesel::update(
        sessions::table
            .filter(sessions::logout_at.is_null())
            .filter(sessions::expires_at.le(now)),
    )
    .set((
        sessions::logout_at.eq(sessions::expires_at.nullable()),
        sessions::logout_by.eq(EndedBy::Expired.stored()),
        sessions::updated_at.eq(now),
    ))
    .returning((sessions::session_id, sessions::user_id))
    .get_results(conn)
    .db()
}

/// Deletes sessions that ended before `before`.
pub fn purge_ended(conn: &mut Conn, before: NaiveDateTime) -> DbResult<usize> {
    diesel::delete(
        sessions::table
            .filter(sessions::logout_at.is_not_null())
            .filter(sessions::logout_at.lt(before)),
    )
    .execute(conn)
    .db()
}

/// Ends every active session of a user except `keep`; returns the
/// `sessionId`s it ended.
pub fn end_all_for_user(
    conn: &mut Conn,
    user_id: i64,
    keep: Option<i64>,
    by: &EndedBy,
    now: NaiveDateTime,
) -> DbResult<Vec<String>> {
    let changes = (
        sessions::logout_at.eq(now),
        sessions::logout_by.eq(by.stored()),
        sessions::updated_at.eq(now),
    );
    let mine = sessions::table
        .filter(sessions::user_id.eq(user_id))
        .filter(active(now));
    match keep {
        Some(keep) => diesel::update(mine.filter(sessions::id.ne(keep)))
            .set(changes)
            .returning(sessions::session_id)
            .get_results(conn),
        None => diesel::update(mine)
            .set(changes)
            .returning(sessions::session_id)
            .get_results(conn),
    }
    .db()
}
