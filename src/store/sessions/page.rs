//! Session lists: filtered, sorted and paged in the database, with keyset
//! cursors so a deep page costs what the first one costs.

use chrono::NaiveDateTime;
use diesel::dsl::count_star;
use diesel::helper_types::InnerJoinQuerySource;
use diesel::prelude::*;
use diesel::sql_types::Bool;

use crate::db::schema::{sessions, users};
use crate::db::{collate_c, regex_imatch, Conn, DbResult, IntoDbResult, MultiBackend};
use crate::domain::listing::{Cursor, Direction, KeyValue, Sort, SortKey};
use crate::store::session_counters;
use crate::store::sessions::active;

/// `query.then_order_by(column <direction>)` for one sort key.
macro_rules! order_by_key {
    ($query:expr, $key:expr, $direction:expr) => {{
        macro_rules! by {
            ($column:expr) => {
                match $direction {
                    Direction::Asc => $query.then_order_by($column.asc()),
                    Direction::Desc => $query.then_order_by($column.desc()),
                }
            };
        }
        match $key {
            SortKey::LoginAt => by!(sessions::login_at),
            SortKey::DeviceName => by!(collate_c(sessions::device_name)),
            SortKey::OsName => by!(collate_c(sessions::os_name)),
            SortKey::OsVersion => by!(collate_c(sessions::os_version)),
            SortKey::Username => by!(collate_c(users::username)),
            SortKey::Name => by!(collate_c(users::name)),
        }
    }};
}

pub(super) use order_by_key;

/// `query` ordered by `sort`'s keys, then by id in the sort's direction, so
/// the order is total and a cursor can resume it.
macro_rules! ordered_by {
    ($query:expr, $sort:expr) => {{
        let mut query = $query;
        for (key, direction) in $sort.keys() {
            query = order_by_key!(query, *key, *direction);
        }
        match $sort.id_direction() {
            Direction::Asc => query.then_order_by(sessions::id.asc()),
            Direction::Desc => query.then_order_by(sessions::id.desc()),
        }
    }};
}

pub(super) use ordered_by;

type Source = InnerJoinQuerySource<sessions::table, users::table>;
type Condition = Box<dyn BoxableExpression<Source, MultiBackend, SqlType = Bool>>;

/// Above this many users matching a filter, the match on users is done in
/// the join instead of through a list of ids.
const MAX_MATCHED_USERS: i64 = 5_000;

/// What to list.
#[derive(Clone, Debug)]
pub struct ListRequest<'a> {
    /// Only this user's sessions, or everyone's.
    pub owner: Option<i64>,
    pub filter: Option<&'a str>,
    /// The filter also matches the owner's username and name.
    pub filter_matches_users: bool,
    pub sort: &'a Sort,
    pub offset: i64,
    pub limit: i64,
    pub after: Option<&'a Cursor>,
    /// The most database work a filter may cost.
    pub filter_budget: std::time::Duration,
}

/// The columns a list shows, sorts by and pages on; lists read these
/// alone, not the whole row (the search term alone is longer than them all).
#[derive(Clone, Debug, Queryable, Selectable)]
#[diesel(table_name = sessions)]
pub struct SessionSummary {
    pub id: i64,
    pub session_id: String,
    pub device_type: String,
    pub device_name: String,
    pub device_version: String,
    pub device_long_version: String,
    pub os_name: String,
    pub os_version: String,
    pub ip: String,
    pub host: String,
    pub login_at: NaiveDateTime,
    pub new_device: bool,
}

#[derive(Clone, Debug)]
pub struct ListedSession {
    pub session: SessionSummary,
    pub user_guid: String,
    pub username: String,
    pub name: String,
}

impl ListedSession {
    /// The sort values of this row, for the cursor that follows it.
    pub fn key_values(&self, sort: &Sort) -> Vec<KeyValue> {
        sort.keys()
            .iter()
            .map(|(key, _)| match key {
                SortKey::LoginAt => KeyValue::Time(self.session.login_at),
                SortKey::DeviceName => KeyValue::Text(self.session.device_name.clone()),
                SortKey::OsName => KeyValue::Text(self.session.os_name.clone()),
                SortKey::OsVersion => KeyValue::Text(self.session.os_version.clone()),
                SortKey::Username => KeyValue::Text(self.username.clone()),
                SortKey::Name => KeyValue::Text(self.name.clone()),
            })
            .collect()
    }
}

pub struct Page {
    pub rows: Vec<ListedSession>,
    pub total: i64,
    /// Whether rows follow the last one on this page.
    pub more: bool,
}

/// One page of active sessions and the number of all that match.
pub fn page(conn: &mut Conn, request: &ListRequest<'_>, now: NaiveDateTime) -> DbResult<Page> {
    if request.filter.is_some() {
        crate::db::with_filter_budget(conn, request.filter_budget, |conn| {
            page_planned(conn, request, now)
        })
    } else {
        page_planned(conn, request, now)
    }
}

fn page_planned(conn: &mut Conn, request: &ListRequest<'_>, now: NaiveDateTime) -> DbResult<Page> {
    let matched_users = match (request.filter, request.filter_matches_users) {
        (Some(pattern), true) => users_matching(conn, pattern)?,
        _ => None,
    };
    // Every session has its user, so the count needs the join only when the
    // filter reads users' columns; without it the count is an index-only scan.
    let everyone_unfiltered = request.owner.is_none() && request.filter.is_none();
    let total: i64 = match sessions_only(request, matched_users.as_deref(), now) {
        _ if everyone_unfiltered => session_counters::active_sessions(conn, now)?,
        Some(condition) => sessions::table
            .filter(condition)
            .select(count_star())
            .first(conn)
            .db()?,
        None => sessions::table
            .inner_join(users::table)
            .filter(matching(request, matched_users.as_deref(), now))
            .select(count_star())
            .first(conn)
            .db()?,
    };

    let mut query = sessions::table
        .inner_join(users::table)
        .filter(matching(request, matched_users.as_deref(), now))
        .select((
            SessionSummary::as_select(),
            users::guid,
            users::username,
            users::name,
        ))
        .into_boxed();
    if let Some(cursor) = request.after {
        query = query.filter(after_cursor(request.sort, cursor));
    }
    query = ordered_by!(query, request.sort);
    let offset = if request.after.is_some() {
        0
    } else {
        request.offset
    };
    let mut rows: Vec<ListedSession> = query
        .offset(offset)
        .limit(request.limit + 1)
        .load::<(SessionSummary, String, String, String)>(conn)
        .db()?
        .into_iter()
        .map(|(session, user_guid, username, name)| ListedSession {
            session,
            user_guid,
            username,
            name,
        })
        .collect();
    let more = rows.len() as i64 > request.limit;
    rows.truncate(request.limit as usize);
    Ok(Page { rows, total, more })
}

/// Ids of the users whose username or name match, when there are few enough
/// to hand to the session query as a list (which Postgres can serve from
/// the user index alongside the trigram index).
fn users_matching(conn: &mut Conn, pattern: &str) -> DbResult<Option<Vec<i64>>> {
    let ids: Vec<i64> = users::table
        .filter(regex_imatch(users::username, pattern).or(regex_imatch(users::name, pattern)))
        .select(users::id)
        .limit(MAX_MATCHED_USERS + 1)
        .load(conn)
        .db()?;
    Ok((ids.len() as i64 <= MAX_MATCHED_USERS).then_some(ids))
}

/// Active sessions that the request selects.
fn matching(
    request: &ListRequest<'_>,
    matched_users: Option<&[i64]>,
    now: NaiveDateTime,
) -> Condition {
    let mut condition: Condition = Box::new(active(now));
    if let Some(owner) = request.owner {
        condition = Box::new(condition.and(sessions::user_id.eq(owner)));
    }
    if let Some(pattern) = request.filter {
        let on_session = regex_imatch(sessions::search_term, pattern.to_owned());
        condition = match (request.filter_matches_users, matched_users) {
            (false, _) => Box::new(condition.and(on_session)),
            (true, Some([])) => Box::new(condition.and(on_session)),
            (true, Some(ids)) => {
                Box::new(condition.and(on_session.or(sessions::user_id.eq_any(ids.to_vec()))))
            }
            (true, None) => Box::new(
                condition.and(
                    on_session
                        .or(regex_imatch(users::username, pattern.to_owned()))
                        .or(regex_imatch(users::name, pattern.to_owned())),
                ),
            ),
        };
    }
    condition
}

type SessionsCondition = Box<dyn BoxableExpression<sessions::table, MultiBackend, SqlType = Bool>>;

/// The same selection as `matching`, on `sessions` alone; `None` when the
/// filter has to read the users' columns.
fn sessions_only(
    request: &ListRequest<'_>,
    matched_users: Option<&[i64]>,
    now: NaiveDateTime,
) -> Option<SessionsCondition> {
    let mut condition: SessionsCondition = Box::new(active(now));
    if let Some(owner) = request.owner {
        condition = Box::new(condition.and(sessions::user_id.eq(owner)));
    }
    if let Some(pattern) = request.filter {
        let on_session = regex_imatch(sessions::search_term, pattern.to_owned());
        condition = match (request.filter_matches_users, matched_users) {
            (false, _) | (true, Some([])) => Box::new(condition.and(on_session)),
            (true, Some(ids)) => {
                Box::new(condition.and(on_session.or(sessions::user_id.eq_any(ids.to_vec()))))
            }
            (true, None) => return None,
        };
    }
    Some(condition)
}

#[derive(Clone, Copy)]
enum Cmp {
    Eq,
    Gt,
    Lt,
    Ge,
    Le,
}

/// `column <cmp> value` for one sort key.
fn compare(key: SortKey, cmp: Cmp, value: &KeyValue) -> Condition {
    macro_rules! cmp {
        ($column:expr, $value:expr) => {
            match cmp {
                Cmp::Eq => Box::new($column.eq($value)) as Condition,
                Cmp::Gt => Box::new($column.gt($value)),
                Cmp::Lt => Box::new($column.lt($value)),
                Cmp::Ge => Box::new($column.ge($value)),
                Cmp::Le => Box::new($column.le($value)),
            }
        };
    }
    match (key, value) {
        (SortKey::LoginAt, KeyValue::Time(t)) => cmp!(sessions::login_at, *t),
        (SortKey::DeviceName, KeyValue::Text(s)) => {
            cmp!(collate_c(sessions::device_name), s.clone())
        }
        (SortKey::OsName, KeyValue::Text(s)) => cmp!(collate_c(sessions::os_name), s.clone()),
        (SortKey::OsVersion, KeyValue::Text(s)) => cmp!(collate_c(sessions::os_version), s.clone()),
        (SortKey::Username, KeyValue::Text(s)) => cmp!(collate_c(users::username), s.clone()),
        (SortKey::Name, KeyValue::Text(s)) => cmp!(collate_c(users::name), s.clone()),
        // Cursor::open checked the types; a mismatch selects nothing.
        _ => Box::new(sessions::id.ne(sessions::id)),
    }
}

fn after(direction: Direction) -> Cmp {
    match direction {
        Direction::Asc => Cmp::Gt,
        Direction::Desc => Cmp::Lt,
    }
}

/// Rows strictly after the cursor in the sort order:
/// `k1 > v1 OR (k1 = v1 AND k2 > v2) OR … OR (all equal AND id > last)`,
/// with `>` read per direction, plus the redundant `k1 >= v1` that lets an
/// index start at the cursor instead of at the top.
fn after_cursor(sort: &Sort, cursor: &Cursor) -> Condition {
    let keys = sort.keys();
    let values = &cursor.values;
    // The keys before position `i` equal the cursor's values.
    let equal_before = |i: usize| -> Option<Condition> {
        keys.iter()
            .zip(values)
            .take(i)
            .fold(None, |acc, ((key, _), value)| {
                Some(and(acc, compare(*key, Cmp::Eq, value)))
            })
    };
    let mut strictly_after: Option<Condition> = None;
    for (i, ((key, direction), value)) in keys.iter().zip(values).enumerate() {
        let step = and(equal_before(i), compare(*key, after(*direction), value));
        strictly_after = Some(or(strictly_after, step));
    }
    let id_after: Condition = match sort.id_direction() {
        Direction::Asc => Box::new(sessions::id.gt(cursor.id)),
        Direction::Desc => Box::new(sessions::id.lt(cursor.id)),
    };
    let strictly_after = or(strictly_after, and(equal_before(keys.len()), id_after));
    match (keys.first(), values.first()) {
        (Some((key, direction)), Some(value)) => {
            let bound = match direction {
                Direction::Asc => Cmp::Ge,
                Direction::Desc => Cmp::Le,
            };
            Box::new(compare(*key, bound, value).and(strictly_after))
        }
        _ => strictly_after,
    }
}

fn and(left: Option<Condition>, right: Condition) -> Condition {
    match left {
        Some(left) => Box::new(left.and(right)),
        None => right,
    }
}

fn or(left: Option<Condition>, right: Condition) -> Condition {
    match left {
        Some(left) => Box::new(left.or(right)),
        None => right,
    }
}
