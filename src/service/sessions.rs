//! Where a session starts and where it ends, whatever surface asked: the
//! Rocket.Chat routes, the admin routes, the JSON action API, the CLI and
//! the sweep all come through here. Synchronous, inside one store call.

use chrono::NaiveDateTime;

use crate::auth::{two_factor, Credentials, Permission};
use crate::config::LimitPolicy;
use crate::db::{self, Conn};
use crate::domain::clock;
use crate::domain::device::Device;
use crate::domain::ended_by::{EndReason, EndedBy};
use crate::domain::filter::Filter;
use crate::domain::listing::{Cursor, ListQuery, SortKey};
use crate::domain::paging::Paging;
use crate::domain::secret_box::SecretBox;
use crate::domain::token::{new_session_id, AuthToken, TokenHash};
use crate::error::{Error, Missing, TwoFactorError};
use crate::service::events as service_events;
use crate::service::Surface;
use crate::state::AppState;
use crate::store::events as store_events;
use crate::store::sessions::page::{ListRequest, ListedSession};
use crate::store::sessions::{self, LiveSession, NewSession, Session};
use crate::store::users::{self, User};
use crate::telemetry::metrics::Metrics;

/// Where a login came from.
#[derive(Clone, Debug, Default)]
pub struct Origin {
    pub ip: String,
    pub host: String,
    pub device: Device,
}

/// How a new session should behave.
#[derive(Clone, Debug)]
pub struct SessionSpec {
    pub origin: Origin,
    pub description: String,
    pub idle_timeout_seconds: i64,
    pub permanent: bool,
    pub api_defaults: String,
    /// The surface the login came through.
    pub surface: Surface,
}

impl SessionSpec {
    /// A session as a plain login opens it: the configured idle timeout,
    /// not permanent, no API defaults.
    pub fn login(origin: Origin, state: &AppState, surface: Surface) -> Self {
        SessionSpec {
            origin,
            surface,
            description: String::new(),
            idle_timeout_seconds: state.settings.idle_timeout_seconds,
            permanent: false,
            api_defaults: "{}".into(),
        }
    }
}

/// Opens a session for a user whose password checked out. A user with TOTP
/// must pass `code` too (a TOTP or backup code); a good one also authorizes
/// the new session for the 2FA window. The raw token is returned once and
/// never stored.
pub fn open(
    conn: &mut Conn,
    state: &AppState,
    user: &User,
    code: Option<&str>,
    spec: SessionSpec,
    now: NaiveDateTime,
) -> Result<(AuthToken, Session), Error> {
    let mut two_factor_until = None;
    if user.totp_enabled {
        let code = code.ok_or(Error::TwoFactor(TwoFactorError::Required {
            enrolled: true,
        }))?;
        two_factor::check_code(conn, state, user, code, now)?;
        two_factor_until = Some(clock::plus_seconds(
            now,
            state.settings.two_factor_window_seconds,
        ));
    }
    let token = AuthToken::generate();
    let owner = (user.id, user.guid.as_str());
    let device_key = spec.origin.device.key(&spec.origin.ip);
    let surface = spec.surface;
    let new = NewSession {
        description: spec.description,
        ip: spec.origin.ip,
        host: spec.origin.host,
        instance_id: state.instance_id.clone(),
        expires_at: state
            .lifetime
            .expiry(spec.permanent, now, now, spec.idle_timeout_seconds),
        idle_timeout_seconds: spec.idle_timeout_seconds,
        permanent: spec.permanent,
        two_factor_until,
        api_defaults: spec.api_defaults,
        device_key,
        ..NewSession::new(new_session_id(), owner, &token, spec.origin.device, now)
    };
    let (session, evicted) = db::write_transaction(conn, |conn| -> Result<_, Error> {
        let mut events = Vec::new();
        let evicted = make_room(conn, state, user, surface, now, &mut events)?;
        let mut new = new;
        let window = state.settings.new_device_days;
        new.new_device = window > 0
            && !sessions::device_seen(
                conn,
                user.id,
                &new.device_key,
                clock::plus_seconds(now, -window * 86_400),
            )?;
        let session = sessions::insert(conn, &new)?;
        events.push(service_events::started(&session, user, surface));
        if session.new_device {
            events.push(service_events::new_device(&session, user));
        }
        store_events::append(conn, &events)?;
        Ok((session, evicted))
    })?;
    state.metrics.session_started(surface);
    state
        .metrics
        .sessions_ended(surface, EndReason::Evicted, evicted);
    Ok((token, session))
}

/// Keeps the user within their session limit before a new session opens:
/// with `refuse`, a user at the limit gets [`Error::SessionLimit`]; with
/// `evict-oldest`, their least recently active sessions end to leave room
/// for one. The user's row is locked first, so parallel logins of one user,
/// on any instance, take turns here. Returns how many ended.
fn make_room(
    conn: &mut Conn,
    state: &AppState,
    user: &User,
    surface: Surface,
    now: NaiveDateTime,
    events: &mut Vec<crate::domain::event::Event>,
) -> Result<usize, Error> {
    let Some(limit) = state.settings.session_limit(user.is_admin()) else {
        return Ok(0);
    };
    users::lock(conn, user.id)?;
    let active = sessions::count_active_for_user(conn, user.id, now)?;
    if active < limit {
        return Ok(0);
    }
    if state.settings.session_limit_policy == LimitPolicy::Refuse {
        return Err(Error::SessionLimit { limit });
    }
    let mut ended = 0;
    for (id, session_id) in sessions::least_recently_active(conn, user.id, now, active - limit + 1)?
    {
        if sessions::revoke_active(conn, id, &EndedBy::Evicted, now)? {
            ended += 1;
            events.push(service_events::ended(
                &session_id,
                &user.guid,
                &EndedBy::Evicted,
                EndReason::Evicted,
                surface,
                now,
            ));
        }
    }
    Ok(ended)
}

/// One session, named the way a surface names it.
#[derive(Clone, Copy, Debug)]
pub enum Target<'a> {
    /// By its 17-character `sessionId`, in any state; with `owner`, only if
    /// it is theirs. Unknown is [`Missing::Session`].
    SessionId {
        session_id: &'a str,
        owner: Option<i64>,
    },
    /// By its numeric id, if active. Otherwise [`Missing::ActiveSession`].
    Active(i64),
    /// By its token, if active. Otherwise [`Missing::ActiveSession`].
    Token(&'a TokenHash),
}

/// What ending did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ended {
    Now,
    /// It had ended before: ending is idempotent.
    Already,
}

/// Who ends sessions, and through which surface.
#[derive(Clone, Copy)]
pub struct Ender<'a> {
    pub by: &'a EndedBy,
    pub surface: Surface,
    /// Where the ended sessions are counted.
    pub metrics: &'a Metrics,
}

impl<'a> Ender<'a> {
    /// Sessions ended by `by` through `surface`, counted in the service's metrics.
    pub fn new(state: &'a AppState, by: &'a EndedBy, surface: Surface) -> Self {
        Ender {
            by,
            surface,
            metrics: &state.metrics,
        }
    }
}

/// Ends one session.
pub fn end(
    conn: &mut Conn,
    target: Target<'_>,
    ender: Ender<'_>,
    now: NaiveDateTime,
) -> Result<Ended, Error> {
    let reason = EndReason::of(ender.by, false);
    let ended = db::write_transaction(conn, |conn| -> Result<Ended, Error> {
        let (session, user) = describe(conn, target, now)?;
        let ended = match target {
            Target::SessionId { .. } => match sessions::end(conn, session.id, ender.by, now)? {
                true => Ended::Now,
                false => Ended::Already,
            },
            Target::Active(_) | Target::Token(_) => {
                match sessions::revoke_active(conn, session.id, ender.by, now)? {
                    true => Ended::Now,
                    false => return Err(Error::NotFound(Missing::ActiveSession)),
                }
            }
        };
        if ended == Ended::Now {
            let event = service_events::ended(
                &session.session_id,
                &user.guid,
                ender.by,
                reason,
                ender.surface,
                now,
            );
            store_events::append(conn, &[event])?;
        }
        Ok(ended)
    })?;
    if ended == Ended::Now {
        ender.metrics.sessions_ended(ender.surface, reason, 1);
    }
    Ok(ended)
}

/// Whose sessions [`end_all`] ends.
#[derive(Clone, Copy, Debug)]
pub enum Owner<'a> {
    Id(i64),
    /// A user's guid; an unknown one is [`Missing::User`].
    Guid(&'a str),
}

/// Ends every active session of a user but `keep`; returns how many ended.
pub fn end_all(
    conn: &mut Conn,
    owner: Owner<'_>,
    keep: Option<i64>,
    ender: Ender<'_>,
    now: NaiveDateTime,
) -> Result<usize, Error> {
    let reason = EndReason::of(ender.by, true);
    let ended = db::write_transaction(conn, |conn| -> Result<usize, Error> {
        let user = match owner {
            Owner::Id(id) => users::find_by_id(conn, id)?,
            Owner::Guid(guid) => users::find_by_guid(conn, guid)?,
        }
        .ok_or(Error::NotFound(Missing::User))?;
        let ended = sessions::end_all_for_user(conn, user.id, keep, ender.by, now)?;
        let events: Vec<_> = ended
            .iter()
            .map(|session_id| {
                service_events::ended(session_id, &user.guid, ender.by, reason, ender.surface, now)
            })
            .collect();
        store_events::append(conn, &events)?;
        Ok(ended.len())
    })?;
    ender.metrics.sessions_ended(ender.surface, reason, ended);
    Ok(ended)
}

/// Ends the sessions whose expiry has passed, at their expiry time.
pub fn expire(conn: &mut Conn, metrics: &Metrics, now: NaiveDateTime) -> Result<usize, Error> {
    let ended = db::write_transaction(conn, |conn| -> Result<usize, Error> {
        let ended = sessions::end_expired(conn, now)?;
        let owners: Vec<i64> = ended.iter().map(|(_, user_id)| *user_id).collect();
        let guids = users::guids(conn, &owners)?;
        let events: Vec<_> = ended
            .iter()
            .map(|(session_id, user_id)| {
                let guid = guids.get(user_id).map_or("", String::as_str);
                service_events::ended(
                    session_id,
                    guid,
                    &EndedBy::Expired,
                    EndReason::Expired,
                    Surface::Sweep,
                    now,
                )
            })
            .collect();
        store_events::append(conn, &events)?;
        Ok(ended.len())
    })?;
    metrics.sessions_ended(Surface::Sweep, EndReason::Expired, ended);
    Ok(ended)
}

/// A session in full with its owner: active or ended by `sessionId`,
/// active by token.
pub fn describe(
    conn: &mut Conn,
    target: Target<'_>,
    now: NaiveDateTime,
) -> Result<(Session, User), Error> {
    let found = match target {
        // An id that cannot name any session is not looked up.
        Target::SessionId { session_id, .. } if !plausible_session_id(session_id) => None,
        Target::SessionId { session_id, owner } => {
            sessions::find_with_owner(conn, session_id, owner)?
        }
        Target::Active(id) => sessions::find_active_by_id(conn, id, now)?,
        Target::Token(hash) => sessions::find_active_by_token(conn, hash, now)?,
    };
    found.ok_or(Error::NotFound(match target {
        Target::SessionId { .. } => Missing::Session,
        Target::Active(_) | Target::Token(_) => Missing::ActiveSession,
    }))
}

/// Any user's active session by `sessionId`, with its owner; an ended,
/// expired or unknown one is [`Missing::Session`].
pub fn describe_active(
    conn: &mut Conn,
    session_id: &str,
    now: NaiveDateTime,
) -> Result<(Session, User), Error> {
    let found = if plausible_session_id(session_id) {
        sessions::find_active_by_session_id(conn, session_id, now)?
    } else {
        None
    };
    found.ok_or(Error::NotFound(Missing::Session))
}

/// A `sessionId` that cannot name any session.
fn plausible_session_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// One page of a keyset-paged list, with the cursor for the next.
pub struct Page {
    pub rows: Vec<ListedSession>,
    pub total: i64,
    /// Sealed; `None` on the last page.
    pub next_cursor: Option<String>,
}

/// One page of active sessions: `owner`'s, or everyone's (whose filter
/// also matches usernames and names).
pub fn page(
    conn: &mut Conn,
    query: &ListQuery,
    owner: Option<i64>,
    state: &AppState,
    now: NaiveDateTime,
) -> Result<Page, Error> {
    let request = ListRequest {
        owner,
        filter: query.filter.as_ref().map(Filter::pattern),
        filter_matches_users: owner.is_none(),
        sort: &query.sort,
        offset: query.paging.offset,
        limit: query.paging.count,
        after: query.cursor.as_ref(),
        filter_budget: state.settings.filter_timeout(),
    };
    let page = sessions::page::page(conn, &request, now)?;
    sealed(query, state, page)
}

/// The caller's own page and the caller, authenticated by the same
/// statement, for a list without a filter or a cursor; `None` when that
/// statement cannot tell (wrong credentials, or a page past the end), and
/// the ordinary path must answer. Marks the session active, as
/// authentication does.
pub fn own_page(
    conn: &mut Conn,
    credentials: &Credentials,
    query: &ListQuery,
    state: &AppState,
    now: NaiveDateTime,
) -> Result<Option<(LiveSession, Page)>, Error> {
    if query.filter.is_some() || query.cursor.is_some() {
        return Ok(None);
    }
    let Paging { offset, count } = query.paging;
    let found = sessions::fused::own_page(
        conn,
        &credentials.user_guid,
        &credentials.token_hash,
        &query.sort,
        offset,
        count,
        now,
    )?;
    fused_page(conn, credentials, query, state, found, now)
}

/// The furthest offset at which everyone's list is read in the statement
/// that authenticates: an index walk this long costs about what the first
/// page does. Further pages take the ordinary path, in the bulkhead.
pub const MAX_FUSED_OFFSET: i64 = 1_000;

/// Whether everyone's list with `query` is cheap enough to read in the
/// statement that authenticates, outside the bulkhead: no filter, no
/// cursor, a near offset, and the order of the index (by login time).
pub fn everyone_page_is_cheap(query: &ListQuery) -> bool {
    query.filter.is_none()
        && query.cursor.is_none()
        && query.paging.offset <= MAX_FUSED_OFFSET
        && query
            .sort
            .keys()
            .iter()
            .all(|(key, _)| *key == SortKey::LoginAt)
}

/// Everyone's page for an administrator with `permission` whose session
/// passed the second factor recently, authenticated by the same
/// statement; `None` when that statement cannot tell (wrong credentials, a
/// missing permission or second factor, a page past the end) or the list
/// is not [cheap](everyone_page_is_cheap), and the ordinary path must
/// answer. Marks the session active, as authentication does.
pub fn everyone_page(
    conn: &mut Conn,
    credentials: &Credentials,
    permission: Permission,
    query: &ListQuery,
    state: &AppState,
    now: NaiveDateTime,
) -> Result<Option<Page>, Error> {
    if !everyone_page_is_cheap(query) {
        return Ok(None);
    }
    let Paging { offset, count } = query.paging;
    let found = sessions::fused::everyone_page(
        conn,
        &credentials.user_guid,
        &credentials.token_hash,
        permission,
        &query.sort,
        offset,
        count,
        now,
    )?;
    let Some((caller, page)) = found else {
        return Ok(None);
    };
    // The statement read only what tells whether activity is due; the
    // rest of the session is read when it is (once per interval).
    let due = clock::plus_seconds(
        caller.last_activity_at,
        credentials.lifetime.activity_interval_seconds,
    );
    if now >= due {
        if let Some(live) = sessions::live_by_id(conn, caller.id)? {
            sessions::touch(conn, &live, &credentials.lifetime, now)?;
        }
    }
    Ok(Some(sealed(query, state, page)?))
}

/// A page read with its caller: marks the caller active and seals the
/// cursor of the next page.
fn fused_page(
    conn: &mut Conn,
    credentials: &Credentials,
    query: &ListQuery,
    state: &AppState,
    found: Option<(LiveSession, sessions::page::Page)>,
    now: NaiveDateTime,
) -> Result<Option<(LiveSession, Page)>, Error> {
    let Some((caller, page)) = found else {
        return Ok(None);
    };
    sessions::touch(conn, &caller, &credentials.lifetime, now)?;
    Ok(Some((caller, sealed(query, state, page)?)))
}

/// A store page with the sealed cursor of the page after it.
fn sealed(query: &ListQuery, state: &AppState, page: sessions::page::Page) -> Result<Page, Error> {
    let next_cursor = match (page.more, page.rows.last()) {
        (true, Some(last)) => Some(seal_cursor(query, last, &state.secrets)?),
        _ => None,
    };
    Ok(Page {
        rows: page.rows,
        total: page.total,
        next_cursor,
    })
}

/// One of the caller's sessions, active or ended, with the caller
/// authenticated by the same statement; `None` when that statement cannot
/// tell (wrong credentials, or no such session of theirs), and the
/// ordinary path must answer. Marks the session active.
pub fn own_session(
    conn: &mut Conn,
    credentials: &Credentials,
    session_id: &str,
    now: NaiveDateTime,
) -> Result<Option<(Session, User)>, Error> {
    if !plausible_session_id(session_id) {
        return Ok(None);
    }
    let found = sessions::fused::own_session(
        conn,
        &credentials.user_guid,
        &credentials.token_hash,
        session_id,
        now,
    )?;
    let Some((caller, session, user)) = found else {
        return Ok(None);
    };
    sessions::touch(conn, &caller, &credentials.lifetime, now)?;
    Ok(Some((session, user)))
}

fn seal_cursor(
    query: &ListQuery,
    last: &ListedSession,
    secrets: &SecretBox,
) -> Result<String, Error> {
    Cursor {
        context: query.cursor_context.clone(),
        values: last.key_values(&query.sort),
        id: last.session.id,
    }
    .seal(secrets)
    .map_err(Error::Internal)
}
