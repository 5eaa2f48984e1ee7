//! Users with active sessions, for the admin surface: read from each user's
//! count of unended sessions (`users.unended_sessions`, kept by triggers on
//! `sessions`), corrected for the few sessions that expired and wait for
//! the sweep to end them. Exact, and a page costs an index walk of users.

use std::collections::HashMap;

use chrono::NaiveDateTime;
use diesel::dsl::{count, exists};
use diesel::prelude::*;

use crate::db::schema::{sessions, users};
use crate::db::{collate_c, Conn, DbResult, IntoDbResult};
use crate::domain::listing::Direction;
use crate::store::sessions::active;

/// Above this many users with expired, unswept sessions, the list probes
/// the sessions instead of correcting the counts.
const MAX_WAITING_USERS: i64 = 1_000;

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
/// users there are.
pub fn users_with_active_sessions(
    conn: &mut Conn,
    sort: UserSort,
    order: Direction,
    offset: i64,
    limit: i64,
    now: NaiveDateTime,
) -> DbResult<(Vec<UserSessionCount>, i64)> {
    // Sessions past their expiry that the sweep has not ended yet: their
    // users' counts are too high by this much.
    let waiting: Vec<(i64, i64, i64)> = sessions::table
        .inner_join(users::table)
        .filter(sessions::logout_at.is_null())
        .filter(sessions::expires_at.le(now))
        .group_by(users::id)
        .select((users::id, count(sessions::id), users::unended_sessions))
        .limit(MAX_WAITING_USERS + 1)
        .load(conn)
        .db()?;
    if waiting.len() as i64 > MAX_WAITING_USERS {
        return by_probing(conn, sort, order, offset, limit, now);
    }
    // Users whose every unended session has expired have no active one.
    let emptied: Vec<i64> = waiting
        .iter()
        .filter(|(_, expired, unended)| expired >= unended)
        .map(|(id, _, _)| *id)
        .collect();
    let corrections: HashMap<i64, i64> = waiting
        .iter()
        .filter(|(_, expired, unended)| expired < unended)
        .map(|(id, expired, _)| (*id, *expired))
        .collect();
    let with_sessions = || {
        users::table
            .filter(users::unended_sessions.gt(0))
            .filter(users::id.ne_all(emptied.clone()))
    };
    let total: i64 = with_sessions().count().get_result(conn).db()?;
    if offset >= total {
        // Past the end: nothing to read, whatever the sort.
        return Ok((Vec::new(), total));
    }

    let select = (
        users::id,
        users::guid,
        users::username,
        users::roles,
        users::unended_sessions,
    );
    let mut query = with_sessions().select(select).into_boxed();
    query = match (sort, order) {
        (UserSort::UserName, Direction::Asc) => {
            query.order_by((collate_c(users::username_key).asc(), users::id.asc()))
        }
        (UserSort::UserName, Direction::Desc) => {
            query.order_by((collate_c(users::username_key).desc(), users::id.desc()))
        }
        (UserSort::SessionCount, Direction::Asc) => {
            query.order_by((users::unended_sessions.asc(), users::id.asc()))
        }
        (UserSort::SessionCount, Direction::Desc) => {
            query.order_by((users::unended_sessions.desc(), users::id.desc()))
        }
    };
    let reorders = sort == UserSort::SessionCount && !corrections.is_empty();
    let mut rows: Vec<Row> = if reorders {
        // A corrected count can only fall. Of the first `offset + limit +
        // corrected` rows by stored count, at least `offset + limit` are
        // exact, so with the corrected users added the page is among them.
        let window = offset
            .saturating_add(limit)
            .saturating_add(corrections.len() as i64);
        let mut rows: Vec<Row> = query.limit(window).load(conn).db()?;
        let corrected: Vec<i64> = corrections.keys().copied().collect();
        let more: Vec<Row> = with_sessions()
            .filter(users::id.eq_any(corrected))
            .select(select)
            .load(conn)
            .db()?;
        rows.extend(more);
        rows.sort_by_key(|row| row.0);
        rows.dedup_by_key(|row| row.0);
        rows
    } else {
        query.offset(offset).limit(limit).load(conn).db()?
    };
    for row in &mut rows {
        row.4 -= corrections.get(&row.0).copied().unwrap_or(0);
    }
    if reorders {
        rows.sort_by_key(|row| (row.4, row.0));
        if order == Direction::Desc {
            rows.reverse();
        }
        rows = rows
            .into_iter()
            .skip(offset as usize)
            .take(limit as usize)
            .collect();
    }
    let rows = rows
        .into_iter()
        .map(
            |(_, guid, username, roles, session_count)| UserSessionCount {
                guid,
                username,
                roles,
                session_count,
            },
        )
        .collect();
    Ok((rows, total))
}

type Row = (i64, String, String, String, i64);

/// The same list from the sessions alone, probing each user's sessions:
/// exact whatever the counts say, for when too many users wait for the
/// sweep to correct theirs.
pub fn by_probing(
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
