//! The event log over HTTP: the live stream for administrators
//! (`GET /api/v1/sessions/events`, Server-Sent Events), each user's own
//! session events (`GET /api/v1/sessions/events.me`), and the audit trail
//! (`GET /api/v1/sessions/audit`, newest first, paged by cursor).
//!
//! A stream reads the store's event log by id, which every instance writes,
//! so it shows every instance's events; ids follow commit order, so reading
//! past the last id seen never misses a late commit. Each stream polls on
//! its own (an idle poll is one indexed read), reads its next batch only
//! once the client has taken the previous one, re-checks its caller's
//! session every few seconds, and holds one of a bounded number of slots.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use actix_web::http::header;
use actix_web::web::Bytes;
use actix_web::{get, web, HttpMessage, HttpRequest, HttpResponse};
use chrono::{DateTime, NaiveDate, NaiveDateTime, SubsecRound};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::{mpsc, watch, OwnedSemaphorePermit, Semaphore};
use utoipa::{IntoParams, ToSchema};

use super::error::{NotLoggedIn, RocketChatError, SimpleError, TypedError as RcError};
use crate::api::extract::{Access, Guard};
use crate::api::methods::RoutedHead;
use crate::api::{param, query_pairs};
use crate::auth::{permissions, Credentials, Permission};
use crate::db::Conn;
use crate::domain::clock;
use crate::domain::event::EventType;
use crate::domain::secret_box::SecretBox;
use crate::domain::token::TokenHash;
use crate::error::Error;
use crate::state::AppState;
use crate::store::events::{self, AuditQuery, StoredEvent};
use crate::store::sessions;

/// How often a stream looks for new events.
const POLL: Duration = Duration::from_millis(500);
/// The most events one poll reads.
const BATCH: i64 = 100;
/// A comment goes out when nothing else has for this long, so proxies keep
/// the connection open.
const HEARTBEAT: Duration = Duration::from_secs(15);
/// How often a stream checks that its caller's session is still active and
/// still has the permission.
const RECHECK: Duration = Duration::from_secs(2);
/// A stream ends after this long; the client resumes with `Last-Event-ID`.
const MAX_LIFETIME: Duration = Duration::from_secs(3600);
/// Store calls in a row that may fail before a stream ends.
const MAX_FAILURES: u32 = 3;
/// The reconnection delay a stream advises (`retry:`), in milliseconds.
const RETRY_MS: u64 = 3000;

/// The audit trail's default and largest `count`.
pub const AUDIT_DEFAULT_COUNT: i64 = 50;
pub const AUDIT_MAX_COUNT: i64 = 500;

/// The session events, which `events.me` shows.
const SESSION_EVENTS: [EventType; 3] = [
    EventType::SessionStarted,
    EventType::SessionEnded,
    EventType::SessionNewDevice,
];

/// The cap on open event streams: so many per instance, and fewer per
/// user, so that no one caller can take them all. Also ends every stream
/// when the server is asked to stop.
pub struct StreamSlots {
    slots: Arc<Semaphore>,
    size: usize,
    per_user: usize,
    open: Arc<Mutex<HashMap<i64, usize>>>,
    closing: watch::Sender<bool>,
}

/// One open stream's slot; given back on drop, however the stream ends.
pub struct StreamSlot {
    _slot: OwnedSemaphorePermit,
    _user: UserStream,
}

struct UserStream {
    user_id: i64,
    open: Arc<Mutex<HashMap<i64, usize>>>,
}

impl Drop for UserStream {
    fn drop(&mut self) {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = open.get_mut(&self.user_id) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.user_id);
            }
        }
    }
}

impl StreamSlots {
    pub fn new(size: usize, per_user: usize) -> Self {
        let size = size.max(1);
        StreamSlots {
            slots: Arc::new(Semaphore::new(size)),
            size,
            per_user: per_user.max(1),
            open: Arc::new(Mutex::new(HashMap::new())),
            closing: watch::Sender::new(false),
        }
    }

    /// A slot for a stream of `user_id`: 429 if the user already has their
    /// share open, 503 if the instance has all it allows, or is stopping.
    pub fn enter(&self, user_id: i64) -> Result<StreamSlot, Error> {
        if *self.closing.borrow() {
            return Err(Error::Busy(
                "This instance is stopping; reconnect (to another instance) with Last-Event-ID"
                    .into(),
            ));
        }
        let user = {
            let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
            let count = open.entry(user_id).or_insert(0);
            if *count >= self.per_user {
                return Err(Error::TooManyRequests(format!(
                    "You already have {} event streams open, the most allowed; close one \
                     (each open page or `curl -N` holds one) and retry",
                    self.per_user
                )));
            }
            *count += 1;
            UserStream {
                user_id,
                open: self.open.clone(),
            }
        };
        let slot = self.slots.clone().try_acquire_owned().map_err(|_| {
            Error::Busy(format!(
                "This instance already serves {} event streams, the most it allows; retry \
                 later, or connect to another instance",
                self.size
            ))
        })?;
        Ok(StreamSlot {
            _slot: slot,
            _user: user,
        })
    }

    /// How many streams are open.
    pub fn open(&self) -> usize {
        self.size - self.slots.available_permits()
    }

    /// Ends every open stream (each says so, so its client reconnects) and
    /// refuses new ones: the server is stopping.
    pub fn close_all(&self) {
        self.closing.send_replace(true);
    }

    fn closing(&self) -> watch::Receiver<bool> {
        self.closing.subscribe()
    }
}

/// Ends the open streams when the process is asked to stop (SIGTERM or
/// SIGINT, which also start the server's graceful shutdown), so that they
/// do not hold the shutdown for its whole timeout.
pub fn close_streams_on_stop(state: web::Data<AppState>) {
    tokio::spawn(async move {
        stop_requested().await;
        state.event_streams.close_all();
    });
}

async fn stop_requested() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) {
            (Ok(mut term), Ok(mut interrupt)) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = interrupt.recv() => {}
                }
            }
            _ => std::future::pending::<()>().await,
        }
    }
    #[cfg(not(unix))]
    {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

// ------------------------------------------------------------------ parameters

/// An event type's name, as the wire writes it.
#[derive(Serialize, ToSchema)]
#[schema(as = EventType)]
#[allow(dead_code)]
enum EventTypeName {
    #[serde(rename = "session.started")]
    SessionStarted,
    #[serde(rename = "session.ended")]
    SessionEnded,
    #[serde(rename = "session.new_device")]
    SessionNewDevice,
    #[serde(rename = "login.failed")]
    LoginFailed,
    #[serde(rename = "login.throttled")]
    LoginThrottled,
    #[serde(rename = "two_factor.succeeded")]
    TwoFactorSucceeded,
    #[serde(rename = "two_factor.failed")]
    TwoFactorFailed,
    #[serde(rename = "two_factor.locked")]
    TwoFactorLocked,
    #[serde(rename = "two_factor.enrolled")]
    TwoFactorEnrolled,
    #[serde(rename = "two_factor.disabled")]
    TwoFactorDisabled,
}

/// The stream's parameters, for the document (the handler parses them
/// after authentication).
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
struct StreamQueryDoc {
    /// Only these event types, comma-separated (`session.started,session.ended`).
    #[param(
        rename = "type",
        pattern = r"^(session\.(started|ended|new_device)|login\.(failed|throttled)|two_factor\.(succeeded|failed|locked|enrolled|disabled))(,(session\.(started|ended|new_device)|login\.(failed|throttled)|two_factor\.(succeeded|failed|locked|enrolled|disabled)))*$"
    )]
    kind: Option<String>,
    /// Resume after this event: the `id` of the last event received. For
    /// clients that cannot send `Last-Event-ID`; the header wins when both
    /// are sent. Without either, the stream starts from now.
    #[param(rename = "lastEventId", minimum = 0)]
    last_event_id: Option<i64>,
}

/// `events.me`'s parameters, for the document.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
struct OwnStreamQueryDoc {
    /// Only these session event types, comma-separated.
    #[param(
        rename = "type",
        pattern = r"^session\.(started|ended|new_device)(,session\.(started|ended|new_device))*$"
    )]
    kind: Option<String>,
    /// Resume after this event (the `id` of the last event received); the
    /// `Last-Event-ID` header wins when both are sent. Without either, the
    /// stream starts from now.
    #[param(rename = "lastEventId", minimum = 0)]
    last_event_id: Option<i64>,
}

/// The audit trail's parameters, for the document.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
struct AuditQueryDoc {
    /// Events per page: 0 or absent means 50; above 500 is clamped to 500.
    #[param(minimum = 0)]
    count: Option<i64>,
    /// The `nextCursor` of the previous page, with the same filters.
    #[param(pattern = "^[A-Za-z0-9_-]*$", max_length = 4096)]
    cursor: Option<String>,
    /// Only the events of this user (their `userId`).
    #[param(rename = "userId")]
    user_id: Option<uuid::Uuid>,
    /// Only these event types, comma-separated (`login.failed,login.throttled`).
    #[param(
        rename = "type",
        pattern = r"^(session\.(started|ended|new_device)|login\.(failed|throttled)|two_factor\.(succeeded|failed|locked|enrolled|disabled))(,(session\.(started|ended|new_device)|login\.(failed|throttled)|two_factor\.(succeeded|failed|locked|enrolled|disabled)))*$"
    )]
    kind: Option<String>,
    /// Only events at or after this time (ISO-8601 with a time zone:
    /// `2025-01-31T09:30:00Z`).
    since: Option<chrono::DateTime<chrono::Utc>>,
    /// Only events before this time; later than `since`.
    until: Option<chrono::DateTime<chrono::Utc>>,
}

/// The names of `kinds`, for messages.
fn names(kinds: &[EventType]) -> String {
    kinds
        .iter()
        .map(|kind| kind.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// `type`: event types, comma-separated, each one of `allowed`.
fn event_types(raw: &str, allowed: &[EventType]) -> Result<Vec<EventType>, Error> {
    let mut kinds = Vec::new();
    for name in raw.split(',').map(str::trim) {
        match EventType::parse(name).filter(|kind| allowed.contains(kind)) {
            Some(kind) if kinds.contains(&kind) => {}
            Some(kind) => kinds.push(kind),
            None => {
                return Err(Error::InvalidParams(format!(
                "'type' must be event types separated by commas, each one of {}; got \"{name}\"",
                names(allowed)
            )))
            }
        }
    }
    Ok(kinds)
}

/// An event id to resume after.
fn event_id(name: &str, raw: &str) -> Result<i64, Error> {
    raw.trim()
        .parse::<i64>()
        .ok()
        .filter(|id| *id >= 0)
        .ok_or_else(|| {
            Error::InvalidParams(format!(
                "'{name}' must be the id of an event received (a non-negative integer), got \"{raw}\""
            ))
        })
}

/// An ISO-8601 timestamp with a time zone, as UTC at the precision sent,
/// within the years 1 to 9999.
fn timestamp(name: &str, raw: &str) -> Result<NaiveDateTime, Error> {
    let parsed = DateTime::parse_from_rfc3339(raw).or_else(|error| {
        // A `+` left unencoded in a query string arrives as a space:
        // `…T09:30:00 02:00` was `…T09:30:00+02:00`.
        match raw.len().checked_sub(6) {
            Some(at) if raw.is_char_boundary(at) && raw[at..].starts_with(' ') => {
                DateTime::parse_from_rfc3339(&format!("{}+{}", &raw[..at], &raw[at + 1..]))
            }
            _ => Err(error),
        }
    });
    let earliest = NaiveDate::from_ymd_opt(1, 1, 1)
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .unwrap_or(NaiveDateTime::MIN);
    parsed
        .map(|t| t.naive_utc().clamp(earliest, clock::far_future()))
        .map_err(|_| {
            Error::InvalidParams(format!(
                "'{name}' must be an ISO-8601 timestamp with a time zone, such as \
                 2025-01-31T09:30:00Z or 2025-01-31T10:30:00%2B01:00, got \"{raw}\""
            ))
        })
}

/// The first whole millisecond at or after `t`. The store keeps event
/// times to the millisecond, so "at or after `t`" and "before `t`" select
/// exactly the events they would at any finer precision when `t` is
/// rounded up.
fn ceil_millis(t: NaiveDateTime) -> NaiveDateTime {
    let whole = t.trunc_subsecs(3);
    if whole == t {
        t
    } else {
        whole + chrono::TimeDelta::milliseconds(1)
    }
}

/// `count`: 0 or absent is the default, above the largest is clamped (as
/// the lists read it: a 64-bit integer).
fn audit_count(raw: &str) -> Result<i64, Error> {
    match raw.parse::<i64>() {
        Ok(0) => Ok(AUDIT_DEFAULT_COUNT),
        Ok(n) if n > 0 => Ok(n.min(AUDIT_MAX_COUNT)),
        _ => Err(Error::InvalidParams(format!(
            "'count' must be a non-negative integer, got \"{raw}\""
        ))),
    }
}

/// `userId`: a user's id (a UUID), in its canonical form.
fn user_guid(raw: &str) -> Result<String, Error> {
    uuid::Uuid::parse_str(raw)
        .map(|guid| guid.hyphenated().to_string())
        .map_err(|_| {
            Error::InvalidParams(format!(
                "'userId' must be a user's id (a UUID such as 83bde819-ec08-4cee-b635-884145630d0b), got \"{raw}\""
            ))
        })
}

// ------------------------------------------------------------------ the stream

/// Whose events a stream shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Scope {
    /// Every event (administrators).
    Everyone,
    /// The caller's own session events.
    Own,
}

impl Scope {
    fn types(self) -> &'static [EventType] {
        match self {
            Scope::Everyone => &EventType::ALL,
            Scope::Own => &SESSION_EVENTS,
        }
    }

    fn access(self) -> Access {
        match self {
            Scope::Everyone => Access::admin(Permission::ViewDeviceManagement),
            Scope::Own => Access::USER,
        }
    }
}

/// A stream request, validated.
struct StreamQuery {
    kinds: Vec<EventType>,
    /// Where to start: after this id, or (`None`) after the newest event.
    resume: Option<i64>,
}

const LAST_EVENT_ID: &str = "last-event-id";

fn stream_query(req: &HttpRequest, scope: Scope) -> Result<StreamQuery, Error> {
    let pairs = query_pairs(req, &["type", "lastEventId"])?;
    let kinds = match param(&pairs, "type") {
        Some(raw) => event_types(raw, scope.types())?,
        None => scope.types().to_vec(),
    };
    // The header is what a reconnecting EventSource sends, and the newer:
    // it wins over the query. Empty, it means no id, as in the SSE standard.
    // Both are checked whenever sent, and the header may be sent once.
    let mut headers = req.headers().get_all(LAST_EVENT_ID);
    let header = match (headers.next(), headers.next()) {
        (_, Some(_)) => {
            return Err(Error::InvalidParams(
                "'Last-Event-ID' must be sent once, with the id of the last event received".into(),
            ))
        }
        (Some(value), None) => Some(value.to_str().map_err(|_| {
            Error::InvalidParams(
                "'Last-Event-ID' must be the id of an event received (a non-negative integer)"
                    .into(),
            )
        })?),
        (None, None) => None,
    };
    let from_header = match header.filter(|v| !v.trim().is_empty()) {
        Some(raw) => Some(event_id("Last-Event-ID", raw)?),
        None => None,
    };
    let from_query = match param(&pairs, "lastEventId") {
        Some(raw) => Some(event_id("lastEventId", raw)?),
        None => None,
    };
    let resume = from_header.or(from_query);
    Ok(StreamQuery { kinds, resume })
}

/// One SSE frame per event: `id`, `event` (its type) and `data` (the
/// payload, one line of JSON).
fn frame(out: &mut String, event: &StoredEvent) {
    use std::fmt::Write;
    let _ = write!(
        out,
        "id: {}\nevent: {}\ndata: {}\n\n",
        event.id,
        event.kind,
        event.payload()
    );
}

fn comment(text: &str) -> Bytes {
    Bytes::from(format!(": {text}\n\n"))
}

/// The body of a stream: what the producer sends, as the client takes it.
struct Frames(mpsc::Receiver<Bytes>);

impl futures_core::Stream for Frames {
    type Item = Result<Bytes, std::convert::Infallible>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.0.poll_recv(cx).map(|frame| frame.map(Ok))
    }
}

/// One open stream: whose, what it shows, and how far it has got.
struct Tail {
    state: web::Data<AppState>,
    user_guid: String,
    token_hash: TokenHash,
    permission: Option<Permission>,
    /// On `events.me`: only this user's events.
    owner: Option<String>,
    kinds: Vec<&'static str>,
    last: i64,
    _slot: StreamSlot,
}

/// What one poll found.
enum Verdict {
    Events(Vec<StoredEvent>),
    Revoked,
}

impl Tail {
    fn shows(&self, event: &StoredEvent) -> bool {
        self.owner
            .as_ref()
            .is_none_or(|owner| *owner == event.user_id)
            && self.kinds.contains(&event.kind.as_str())
    }

    /// The next batch, in one store call; when `recheck`, first whether the
    /// caller's session is still active (without marking it active: a
    /// stream is not activity) and still has the permission.
    async fn read(&self, recheck: bool) -> Result<Verdict, Error> {
        let guid = self.user_guid.clone();
        let hash = self.token_hash.clone();
        let (permission, last) = (self.permission, self.last);
        self.state
            .db
            .run(move |conn| {
                if recheck && !still_allowed(conn, &guid, &hash, permission)? {
                    return Ok(Verdict::Revoked);
                }
                Ok(Verdict::Events(events::after(conn, last, BATCH)?))
            })
            .await
    }

    async fn run(mut self, tx: mpsc::Sender<Bytes>) {
        let started = Instant::now();
        let mut closing = self.state.event_streams.closing();
        let mut checked = Instant::now();
        let mut written = Instant::now();
        let mut failures = 0;
        // The reconnection delay, and where this stream starts: a client
        // that reconnects with this id misses nothing.
        let opening = format!("retry: {RETRY_MS}\nid: {}\n\n", self.last);
        if tx.send(Bytes::from(opening)).await.is_err() {
            return;
        }
        loop {
            // Backpressure: the next batch is read once the client has
            // taken the previous one.
            let Ok(permit) = tx.reserve().await else {
                return;
            };
            if *closing.borrow() {
                permit.send(comment(
                    "the server is stopping; reconnect with Last-Event-ID",
                ));
                return;
            }
            if started.elapsed() >= MAX_LIFETIME {
                permit.send(comment(
                    "this stream has run for an hour; reconnect with Last-Event-ID",
                ));
                return;
            }
            let recheck = checked.elapsed() >= RECHECK;
            let batch = match self.read(recheck).await {
                Ok(Verdict::Events(batch)) => {
                    failures = 0;
                    if recheck {
                        checked = Instant::now();
                    }
                    batch
                }
                Ok(Verdict::Revoked) => {
                    permit.send(comment(
                        "the session has ended, or no longer has the permission",
                    ));
                    return;
                }
                Err(error) => {
                    failures += 1;
                    tracing::debug!(%error, failures, "event stream: reading the store failed");
                    if failures >= MAX_FAILURES {
                        permit.send(comment(
                            "the store is unavailable; reconnect with Last-Event-ID",
                        ));
                        return;
                    }
                    Vec::new()
                }
            };
            let full = batch.len() as i64 >= BATCH;
            let mut out = String::new();
            for event in batch.iter().filter(|event| self.shows(event)) {
                frame(&mut out, event);
            }
            if let Some(event) = batch.last() {
                self.last = event.id;
            }
            if !out.is_empty() {
                permit.send(Bytes::from(out));
                written = Instant::now();
            } else if written.elapsed() >= HEARTBEAT {
                permit.send(Bytes::from_static(b": keep-alive\n\n"));
                written = Instant::now();
            } else {
                drop(permit);
            }
            if full {
                // More are waiting: read on as soon as the client takes these.
                continue;
            }
            tokio::select! {
                _ = tokio::time::sleep(POLL) => {}
                _ = tx.closed() => return,
                _ = closing.changed() => {}
            }
        }
    }
}

/// Whether the session behind these credentials is still active and, with
/// `permission`, still has it.
fn still_allowed(
    conn: &mut Conn,
    user_guid: &str,
    token_hash: &TokenHash,
    permission: Option<Permission>,
) -> Result<bool, Error> {
    let found = sessions::authenticate(conn, user_guid, token_hash, clock::now())?;
    Ok(found.is_some_and(|(_, user)| {
        permission.is_none_or(|p| permissions::has_permission(user.role_list(), p))
    }))
}

type Answer = Result<HttpResponse, RocketChatError>;

fn stream_response() -> actix_web::HttpResponseBuilder {
    let mut response = HttpResponse::Ok();
    response
        .content_type("text/event-stream")
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header(("x-accel-buffering", "no"));
    response
}

/// Authorizes, takes a slot, and starts the stream. A `HEAD` gets the
/// stream's headers after the same checks, and no stream.
async fn open(
    guard: Guard,
    credentials: Credentials,
    req: HttpRequest,
    state: web::Data<AppState>,
    scope: Scope,
    query: Result<StreamQuery, Error>,
) -> Answer {
    let (user_id, user_guid, start, kinds) = guard
        .run(&state, scope.access(), query, |conn, _, caller, query| {
            // An id past the newest event (one seen on another store)
            // starts from now, as no id does.
            let newest = events::last_id(conn)?;
            let start = query.resume.map_or(newest, |id| id.min(newest));
            Ok((caller.user.id, caller.user.guid, start, query.kinds))
        })
        .await?;
    if req.extensions().contains::<RoutedHead>() {
        return Ok(stream_response().finish());
    }
    let slot = state.event_streams.enter(user_id)?;
    let tail = Tail {
        state: state.clone(),
        owner: (scope == Scope::Own).then(|| user_guid.clone()),
        user_guid,
        token_hash: credentials.token_hash,
        permission: scope.access().permission,
        kinds: kinds.into_iter().map(EventType::as_str).collect(),
        last: start,
        _slot: slot,
    };
    let (tx, rx) = mpsc::channel(1);
    actix_web::rt::spawn(tail.run(tx));
    Ok(stream_response().streaming(Frames(rx)))
}

/// Every event, live, as Server-Sent Events; needs `view-device-management` and 2FA.
///
/// Each event is a frame `id: <id>`, `event: <type>`, `data: <JSON>`, the
/// data being `{"type", "timestamp", "data": {"eventId", "userId",
/// "sessionId", …}}`. The first frame carries `retry:` and the `id:` the
/// stream starts after; a comment (`: keep-alive`) goes out every 15 s when
/// nothing else has. Resume with `Last-Event-ID` (or `lastEventId`): the
/// events after that id are sent first. The stream ends when the caller's
/// session ends or loses the permission (checked every 2 s), after an hour,
/// or when the server stops; reconnect with the last id.
#[utoipa::path(
    tag = "events",
    security(("user_id" = [], "auth_token" = [], "two_factor" = []), ("user_id" = [], "auth_token" = [])),
    params(
        StreamQueryDoc,
        ("Last-Event-ID" = Option<String>, Header, description = "Resume after this event id (a non-negative integer), as EventSource sends it on reconnecting; empty means none"),
    ),
    responses(
        (status = 200, description = "The stream (`text/event-stream`), open until the caller's session ends, an hour passes or the server stops", content_type = "text/event-stream", body = String),
        (status = 400, description = "A bad `type`, `lastEventId` or `Last-Event-ID`, an unknown parameter, or the second factor is missing or wrong", body = RcError),
        (status = 401, description = "Not logged in", body = NotLoggedIn),
        (status = 403, description = "Missing permission", body = SimpleError),
        (status = 429, description = "The caller already has as many streams open as `SESSIOND_EVENT_STREAMS_PER_USER` allows (8 by default; `error-too-many-requests`); see Retry-After", body = RcError),
        (status = 503, description = "This instance already serves as many streams as `SESSIOND_EVENT_STREAMS` allows (128 by default) or is stopping (`error-busy`), or the store is unavailable; retry", body = RcError),
    )
)]
#[get("/api/v1/sessions/events")]
pub(super) async fn stream(
    guard: Guard,
    credentials: Credentials,
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Answer {
    let query = stream_query(&req, Scope::Everyone);
    open(guard, credentials, req, state, Scope::Everyone, query).await
}

/// The caller's own session events, live, as Server-Sent Events.
///
/// `session.started`, `session.ended` and `session.new_device` of the
/// caller's sessions, framed as on `events`; no second factor.
#[utoipa::path(
    tag = "events",
    security(("user_id" = [], "auth_token" = [])),
    params(
        OwnStreamQueryDoc,
        ("Last-Event-ID" = Option<String>, Header, description = "Resume after this event id (a non-negative integer), as EventSource sends it on reconnecting; empty means none"),
    ),
    responses(
        (status = 200, description = "The stream (`text/event-stream`), open until the caller's session ends, an hour passes or the server stops", content_type = "text/event-stream", body = String),
        (status = 400, description = "A bad `type`, `lastEventId` or `Last-Event-ID`, or an unknown parameter", body = RcError),
        (status = 401, description = "Not logged in", body = NotLoggedIn),
        (status = 429, description = "The caller already has as many streams open as `SESSIOND_EVENT_STREAMS_PER_USER` allows (8 by default; `error-too-many-requests`); see Retry-After", body = RcError),
        (status = 503, description = "This instance already serves as many streams as `SESSIOND_EVENT_STREAMS` allows (128 by default) or is stopping (`error-busy`), or the store is unavailable; retry", body = RcError),
    )
)]
#[get("/api/v1/sessions/events.me")]
pub(super) async fn stream_own(
    guard: Guard,
    credentials: Credentials,
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Answer {
    let query = stream_query(&req, Scope::Own);
    open(guard, credentials, req, state, Scope::Own, query).await
}

// ------------------------------------------------------------------ the audit trail

/// One event of the audit trail: its id, then its payload.
#[derive(Serialize, ToSchema)]
pub struct AuditEvent {
    /// The event's place in the log (the stream's `id:`).
    pub id: i64,
    #[serde(rename = "type")]
    #[schema(value_type = EventTypeName)]
    pub kind: String,
    /// When it happened: ISO-8601 UTC with milliseconds.
    pub timestamp: String,
    /// `eventId`, `userId` (when there is a user), `sessionId` (when there is
    /// a session) and what the type adds; never a token, password or code.
    #[schema(value_type = Object)]
    pub data: Value,
}

impl From<StoredEvent> for AuditEvent {
    fn from(event: StoredEvent) -> Self {
        let data = event
            .payload()
            .get_mut("data")
            .map(Value::take)
            .unwrap_or_default();
        AuditEvent {
            id: event.id,
            timestamp: clock::iso_millis(event.occurred_at),
            kind: event.kind,
            data,
        }
    }
}

/// A page of the audit trail, newest first.
#[derive(Serialize, ToSchema)]
pub struct AuditPage {
    pub events: Vec<AuditEvent>,
    /// How many events this page holds.
    pub count: usize,
    /// Pass as `cursor` for the next (older) page, with the same filters;
    /// null on the last page.
    #[serde(rename = "nextCursor")]
    pub next_cursor: Option<String>,
    pub success: bool,
}

/// Where the next page starts: below this id, for these filters. Sealed
/// with the server key, so a cursor that was altered is refused.
#[derive(Serialize, Deserialize)]
struct AuditCursor {
    #[serde(rename = "c")]
    context: String,
    #[serde(rename = "i")]
    before: i64,
}

const AUDIT_CURSOR: &str = "sessiond-audit-cursor";

impl AuditCursor {
    fn seal(&self, secrets: &SecretBox) -> Result<String, Error> {
        let json = serde_json::to_vec(self)
            .map_err(|e| Error::Internal(format!("encoding a cursor: {e}")))?;
        secrets
            .seal_url_safe(&json, AUDIT_CURSOR)
            .map_err(|e| Error::Internal(format!("sealing a cursor: {e}")))
    }

    fn open(raw: &str, secrets: &SecretBox, context: &str) -> Result<i64, Error> {
        let invalid = || {
            Error::bad_request(
                "error-invalid-cursor",
                "The cursor is not one this service issued, or it was altered; request the \
                 first page without a cursor",
            )
        };
        if raw.len() > 4096 {
            return Err(invalid());
        }
        let bytes = secrets
            .open_url_safe(raw, AUDIT_CURSOR)
            .ok_or_else(invalid)?;
        let cursor: AuditCursor = serde_json::from_slice(&bytes).map_err(|_| invalid())?;
        if cursor.context != context {
            return Err(Error::bad_request(
                "error-invalid-cursor",
                "The cursor was issued for other filters; send the same userId, type, since \
                 and until, or start again without a cursor",
            ));
        }
        Ok(cursor.before)
    }
}

/// An audit request, validated.
struct AuditRequest {
    query: AuditQuery,
    count: i64,
    /// What a cursor for these filters carries.
    context: String,
}

const AUDIT_PARAMS: &[&str] = &["count", "cursor", "userId", "type", "since", "until"];

fn audit_request(req: &HttpRequest, secrets: &SecretBox) -> Result<AuditRequest, Error> {
    let pairs = query_pairs(req, AUDIT_PARAMS)?;
    let count = param(&pairs, "count").map_or(Ok(AUDIT_DEFAULT_COUNT), audit_count)?;
    let user_id = param(&pairs, "userId").map(user_guid).transpose()?;
    let mut kinds = match param(&pairs, "type") {
        Some(raw) => event_types(raw, &EventType::ALL)?
            .into_iter()
            .map(|kind| kind.as_str().to_owned())
            .collect(),
        None => Vec::new(),
    };
    kinds.sort();
    let (raw_since, raw_until) = (param(&pairs, "since"), param(&pairs, "until"));
    let since = raw_since.map(|raw| timestamp("since", raw)).transpose()?;
    let until = raw_until.map(|raw| timestamp("until", raw)).transpose()?;
    if let (Some(since), Some(until)) = (since, until) {
        if since >= until {
            return Err(Error::InvalidParams(format!(
                "'since' must be before 'until'; got since \"{}\" and until \"{}\"",
                raw_since.unwrap_or_default(),
                raw_until.unwrap_or_default()
            )));
        }
    }
    let (since, until) = (since.map(ceil_millis), until.map(ceil_millis));
    let context = format!(
        "audit|{}|{}|{}|{}",
        user_id.as_deref().unwrap_or(""),
        kinds.join(","),
        since.map(clock::iso_millis).unwrap_or_default(),
        until.map(clock::iso_millis).unwrap_or_default(),
    );
    let before_id = match param(&pairs, "cursor").filter(|raw| !raw.is_empty()) {
        Some(raw) => Some(AuditCursor::open(raw, secrets, &context)?),
        None => None,
    };
    Ok(AuditRequest {
        query: AuditQuery {
            user_id,
            kinds,
            since,
            until,
            before_id,
            // One more than the page, to know whether another follows.
            limit: count + 1,
        },
        count,
        context,
    })
}

fn audit_page(
    conn: &mut Conn,
    state: &AppState,
    request: AuditRequest,
) -> Result<AuditPage, Error> {
    let mut rows = events::audit(conn, &request.query)?;
    let more = rows.len() as i64 > request.count;
    rows.truncate(request.count as usize);
    let next_cursor = match rows.last() {
        Some(last) if more => Some(
            AuditCursor {
                context: request.context,
                before: last.id,
            }
            .seal(&state.secrets)?,
        ),
        _ => None,
    };
    Ok(AuditPage {
        count: rows.len(),
        events: rows.into_iter().map(AuditEvent::from).collect(),
        next_cursor,
        success: true,
    })
}

/// The event history, newest first; needs `view-device-management` and 2FA.
///
/// Filtered by user, type and time, paged by `cursor`. Events are kept for
/// `SESSIOND_AUDIT_RETENTION_SECONDS` (90 days).
#[utoipa::path(
    tag = "events",
    security(("user_id" = [], "auth_token" = [], "two_factor" = []), ("user_id" = [], "auth_token" = [])),
    params(AuditQueryDoc),
    responses(
        (status = 200, description = "One page, newest first", body = AuditPage),
        (status = 400, description = "A bad `count`, `cursor`, `userId`, `type`, `since` or `until` (or `since` not before `until`), an unknown parameter, or the second factor is missing or wrong", body = RcError),
        (status = 401, description = "Not logged in", body = NotLoggedIn),
        (status = 403, description = "Missing permission", body = SimpleError),
        (status = 429, description = "The caller already has as many expensive lists running as allowed (`error-too-many-requests`); see Retry-After", body = RcError),
        (status = 503, description = "The store is unavailable, or every slot for expensive lists stayed busy (`error-busy`); retry", body = RcError),
    )
)]
#[get("/api/v1/sessions/audit")]
pub(super) async fn audit(guard: Guard, req: HttpRequest, state: web::Data<AppState>) -> Answer {
    let request = audit_request(&req, &state.secrets);
    let access = Access::admin(Permission::ViewDeviceManagement);
    // Filters by time may walk much of the log: in the bulkhead.
    let page = guard
        .run_expensive(&state, access, request, |conn, app, _, request| {
            audit_page(conn, app, request)
        })
        .await?;
    Ok(HttpResponse::Ok().json(page))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secrets() -> SecretBox {
        SecretBox::from_base64("c2Vzc2lvbmQtdGVzdC1rZXktMzItYnl0ZXMtbG9uZyE=").unwrap()
    }

    fn message(error: Error) -> String {
        match error {
            Error::InvalidParams(message) => message,
            Error::BadRequest { message, .. } => message,
            other => panic!("not a 400: {other:?}"),
        }
    }

    #[test]
    fn types_are_validated_against_the_scope() {
        assert_eq!(
            event_types(
                "session.started, session.ended,session.started",
                &EventType::ALL
            )
            .unwrap(),
            [EventType::SessionStarted, EventType::SessionEnded]
        );
        let unknown = message(event_types("session.started,nope", &EventType::ALL).unwrap_err());
        assert!(unknown.contains("got \"nope\""), "{unknown}");
        assert!(unknown.contains("two_factor.disabled"), "{unknown}");
        assert!(event_types("", &EventType::ALL).is_err());
        let own = message(event_types("login.failed", &SESSION_EVENTS).unwrap_err());
        assert!(
            own.contains("session.new_device") && !own.contains("two_factor"),
            "{own}"
        );
    }

    #[test]
    fn the_documented_patterns_accept_exactly_the_types() {
        let pattern = |params: Vec<utoipa::openapi::path::Parameter>| {
            let parameter = params.into_iter().find(|p| p.name == "type").unwrap();
            let schema = serde_json::to_value(parameter.schema.unwrap()).unwrap();
            regex::Regex::new(schema["pattern"].as_str().unwrap()).unwrap()
        };
        for (params, allowed) in [
            (StreamQueryDoc::into_params(|| None), &EventType::ALL[..]),
            (AuditQueryDoc::into_params(|| None), &EventType::ALL[..]),
            (OwnStreamQueryDoc::into_params(|| None), &SESSION_EVENTS[..]),
        ] {
            let pattern = pattern(params);
            for kind in EventType::ALL {
                assert_eq!(
                    pattern.is_match(kind.as_str()),
                    allowed.contains(&kind),
                    "{pattern} {kind:?}"
                );
            }
            let all = names(allowed).replace(", ", ",");
            assert!(pattern.is_match(&all), "{pattern} {all}");
            for bad in [
                "",
                ",",
                "session.started,",
                "session.nope",
                "session.started;x",
            ] {
                assert!(!pattern.is_match(bad), "{pattern} {bad}");
            }
        }
    }

    #[test]
    fn the_documented_type_names_are_the_types() {
        let document =
            serde_json::to_value(<EventTypeName as utoipa::PartialSchema>::schema()).unwrap();
        let documented: Vec<&str> = document["enum"]
            .as_array()
            .unwrap()
            .iter()
            .map(|name| name.as_str().unwrap())
            .collect();
        let names: Vec<&str> = EventType::ALL.iter().map(|k| k.as_str()).collect();
        assert_eq!(documented, names);
    }

    #[test]
    fn event_ids_are_non_negative_integers() {
        assert_eq!(event_id("lastEventId", "42").unwrap(), 42);
        assert_eq!(event_id("lastEventId", " 0 ").unwrap(), 0);
        for bad in ["-1", "x", "", "1.5", "99999999999999999999"] {
            let error = message(event_id("Last-Event-ID", bad).unwrap_err());
            assert!(error.starts_with("'Last-Event-ID' must be"), "{error}");
        }
    }

    #[test]
    fn timestamps_need_a_zone_and_read_as_utc_milliseconds() {
        let at = |raw| clock::iso_millis(timestamp("since", raw).unwrap());
        assert_eq!(at("2025-01-31T09:30:00Z"), "2025-01-31T09:30:00.000Z");
        assert_eq!(
            at("2025-01-31T10:30:00.123456+01:00"),
            "2025-01-31T09:30:00.123Z"
        );
        // An unencoded `+` reads as a space.
        assert_eq!(at("2025-01-31T10:30:00 01:00"), "2025-01-31T09:30:00.000Z");
        assert_eq!(at("0001-01-01T00:00:00+23:59"), "0001-01-01T00:00:00.000Z");
        assert_eq!(at("9999-12-31T23:59:59-23:59"), "9999-12-31T23:59:59.000Z");
        for bad in [
            "2025-01-31",
            "2025-01-31T09:30:00",
            "yesterday",
            "",
            "é2025-01-31T09:30:00Z",
        ] {
            let error = message(timestamp("since", bad).unwrap_err());
            assert!(error.contains("ISO-8601"), "{error}");
        }
    }

    #[test]
    fn audit_counts_default_and_clamp() {
        assert_eq!(audit_count("0").unwrap(), AUDIT_DEFAULT_COUNT);
        assert_eq!(audit_count("7").unwrap(), 7);
        assert_eq!(audit_count("501").unwrap(), AUDIT_MAX_COUNT);
        assert_eq!(audit_count(&i64::MAX.to_string()).unwrap(), AUDIT_MAX_COUNT);
        for bad in ["-1", "", "x", "1.5", "9223372036854775808"] {
            assert!(message(audit_count(bad).unwrap_err()).contains("non-negative"));
        }
    }

    #[test]
    fn audit_cursors_open_only_for_their_filters() {
        let secrets = secrets();
        let sealed = AuditCursor {
            context: "audit|a".into(),
            before: 17,
        }
        .seal(&secrets)
        .unwrap();
        assert_eq!(AuditCursor::open(&sealed, &secrets, "audit|a").unwrap(), 17);
        let mismatch = message(AuditCursor::open(&sealed, &secrets, "audit|b").unwrap_err());
        assert!(mismatch.contains("other filters"), "{mismatch}");
        let mut altered = sealed.clone();
        altered.replace_range(10..11, if &sealed[10..11] == "A" { "B" } else { "A" });
        let invalid = message(AuditCursor::open(&altered, &secrets, "audit|a").unwrap_err());
        assert!(invalid.contains("not one this service issued"), "{invalid}");
        assert!(AuditCursor::open("x".repeat(5000).as_str(), &secrets, "audit|a").is_err());
    }

    #[test]
    fn stream_slots_cap_each_user_and_the_instance() {
        let slots = StreamSlots::new(3, 2);
        let a1 = slots.enter(1).unwrap();
        let _a2 = slots.enter(1).unwrap();
        assert!(matches!(slots.enter(1), Err(Error::TooManyRequests(_))));
        let _b1 = slots.enter(2).unwrap();
        assert_eq!(slots.open(), 3);
        // The instance is full: 503, and the refused user's count is given back.
        assert!(matches!(slots.enter(3), Err(Error::Busy(_))));
        drop(a1);
        assert_eq!(slots.open(), 2);
        let _a3 = slots.enter(1).unwrap();
        assert!(matches!(slots.enter(1), Err(Error::TooManyRequests(_))));
        drop(_b1);
        let _c1 = slots.enter(3).unwrap();
        slots.close_all();
        assert!(
            matches!(slots.enter(4), Err(Error::Busy(message)) if message.contains("stopping"))
        );
    }

    #[test]
    fn frames_carry_id_event_and_one_line_of_data() {
        let event = StoredEvent {
            id: 9,
            event_id: "evt_1".into(),
            kind: "session.ended".into(),
            occurred_at: clock::now(),
            user_id: "u".into(),
            session_id: "s".into(),
            data: r#"{"reason":"logout","note":"a\nb"}"#.into(),
        };
        let mut out = String::new();
        frame(&mut out, &event);
        let lines: Vec<&str> = out.split('\n').collect();
        assert_eq!(lines[0], "id: 9");
        assert_eq!(lines[1], "event: session.ended");
        let data: Value = serde_json::from_str(lines[2].strip_prefix("data: ").unwrap()).unwrap();
        assert_eq!(data["data"]["note"], "a\nb");
        assert_eq!(&lines[3..], ["", ""]);
        let audited = AuditEvent::from(event);
        assert_eq!(audited.data["eventId"], "evt_1");
        assert_eq!(audited.data["sessionId"], "s");
    }
}
