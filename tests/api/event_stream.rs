//! The live event stream (`GET /api/v1/sessions/events`, `events.me`) and
//! the audit trail (`GET /api/v1/sessions/audit`): what they show, in which
//! order, who may see it, and what they refuse.
//!
//! Streams are read incrementally (`chunk()`), every wait is bounded, and no
//! check depends on how long something took.

use std::time::{Duration, Instant};

use diesel::{ExpressionMethods, QueryDsl, RunQueryDsl};
use serde_json::{json, Value};

use crate::helpers::{
    body, spawn_app, spawn_app_with, Session, Store, TestApp, AGENTS, USER_PASSWORD,
};
use crate::on_both_stores;

/// How long any one wait may take before the test fails.
const WAIT: Duration = Duration::from_secs(15);
const WRONG_PASSWORD: &str = "not-the-password-3fd1";

on_both_stores!(
    live_events_arrive_in_order_with_id_event_and_data,
    ending_thousands_of_sessions_records_an_event_for_each,
    resuming_replays_exactly_the_events_after_the_last_id,
    the_type_filter_keeps_only_those_types,
    streams_refuse_whom_list_all_refuses_and_bad_parameters,
    a_stream_ends_when_its_session_ends_or_loses_the_role,
    a_users_own_stream_shows_only_their_session_events,
    the_audit_trail_pages_without_duplicates_or_gaps,
    the_audit_trail_filters_by_user_type_and_time,
    bad_audit_parameters_get_400_saying_what_to_fix,
);

/// One SSE frame: its fields, and its comment lines.
#[derive(Debug, Default)]
struct Frame {
    id: Option<i64>,
    event: Option<String>,
    data: Option<String>,
    retry: Option<u64>,
    comments: Vec<String>,
}

/// An event as the stream sent it.
#[derive(Debug)]
struct Streamed {
    id: i64,
    event: String,
    payload: Value,
}

/// An open stream, read as it comes.
struct Sse {
    response: reqwest::Response,
    buffer: Vec<u8>,
    ended: bool,
    /// Every frame's text, for the check that no secret was sent.
    text: String,
}

impl Sse {
    /// Opens `path` as `session`, with extra headers; the answer must be 200
    /// with the stream's headers.
    async fn open(app: &TestApp, path: &str, session: &Session, headers: &[(&str, &str)]) -> Sse {
        let mut request = app.client.get(app.url(path)).headers(session.headers());
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.expect("request");
        let status = response.status();
        if status != 200 {
            panic!(
                "{path}: {status} {}",
                response.text().await.unwrap_or_default()
            );
        }
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .map(|v| v.to_str().unwrap().to_owned())
                .unwrap_or_default()
        };
        assert_eq!(header("content-type"), "text/event-stream", "{path}");
        assert_eq!(header("cache-control"), "no-cache", "{path}");
        assert_eq!(header("x-accel-buffering"), "no", "{path}");
        Sse {
            response,
            buffer: Vec::new(),
            ended: false,
            text: String::new(),
        }
    }

    /// The next frame, or `None` once the server has ended the stream.
    async fn frame(&mut self) -> Option<Frame> {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(end) = self.buffer.windows(2).position(|w| w == b"\n\n") {
                let raw: Vec<u8> = self.buffer.drain(..end + 2).collect();
                let text = String::from_utf8(raw).expect("UTF-8 frames");
                self.text.push_str(&text);
                return Some(parse(&text));
            }
            if self.ended {
                assert!(
                    self.buffer.is_empty(),
                    "a partial frame at the end: {:?}",
                    self.buffer
                );
                return None;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, self.response.chunk()).await {
                Ok(Ok(Some(chunk))) => self.buffer.extend_from_slice(&chunk),
                Ok(Ok(None)) => self.ended = true,
                Ok(Err(error)) => panic!("reading the stream: {error}"),
                Err(_) => panic!("no frame within {WAIT:?}; so far: {}", self.text),
            }
        }
    }

    /// The opening frame: the reconnection delay and the id the stream starts after.
    async fn opening(&mut self) -> i64 {
        let frame = self.frame().await.expect("an opening frame");
        assert!(frame.retry.is_some_and(|ms| ms > 0), "{frame:?}");
        assert!(frame.event.is_none() && frame.data.is_none(), "{frame:?}");
        frame
            .id
            .expect("the opening frame names where the stream starts")
    }

    /// The next event, skipping comments; panics if the stream ends first.
    async fn event(&mut self) -> Streamed {
        loop {
            let frame = self.frame().await.unwrap_or_else(|| {
                panic!(
                    "the stream ended while an event was expected: {}",
                    self.text
                )
            });
            if let Some(data) = frame.data {
                let payload: Value = serde_json::from_str(&data).expect("data is JSON");
                let event = frame.event.expect("every event names its type");
                assert_eq!(payload["type"], event.as_str(), "event: is the type");
                return Streamed {
                    id: frame.id.expect("every event has an id"),
                    event,
                    payload,
                };
            }
        }
    }

    async fn events(&mut self, count: usize) -> Vec<Streamed> {
        let mut events = Vec::with_capacity(count);
        while events.len() < count {
            events.push(self.event().await);
        }
        events
    }

    /// Reads until the server ends the stream; returns the events on the way.
    async fn until_end(&mut self) -> Vec<Streamed> {
        let mut events = Vec::new();
        let deadline = Instant::now() + WAIT;
        while let Some(frame) = self.frame().await {
            assert!(
                Instant::now() < deadline,
                "the stream did not end: {}",
                self.text
            );
            if let (Some(data), Some(event), Some(id)) = (frame.data, frame.event, frame.id) {
                events.push(Streamed {
                    id,
                    event,
                    payload: serde_json::from_str(&data).unwrap(),
                });
            }
        }
        events
    }
}

fn parse(text: &str) -> Frame {
    let mut frame = Frame::default();
    for line in text.lines().filter(|line| !line.is_empty()) {
        if let Some(comment) = line.strip_prefix(':') {
            frame.comments.push(comment.trim().to_owned());
            continue;
        }
        let (field, value) = line.split_once(": ").unwrap_or((line, ""));
        match field {
            "id" => frame.id = Some(value.parse().expect("numeric ids")),
            "event" => frame.event = Some(value.to_owned()),
            "data" => {
                assert!(frame.data.is_none(), "data is one line: {text}");
                frame.data = Some(value.to_owned());
            }
            "retry" => frame.retry = Some(value.parse().expect("retry in ms")),
            other => panic!("unknown field {other}: {text}"),
        }
    }
    frame
}

/// Logs in as `username` from `agent`.
async fn login_from(app: &TestApp, username: &str, agent: &str) -> Session {
    app.login_from(username, agent).await
}

async fn logout(app: &TestApp, session: &Session) {
    let response = app.post_as("/api/v1/logout", session, &json!({})).await;
    assert_eq!(response.status(), 200);
}

async fn wrong_password(app: &TestApp, username: &str) {
    let response = app.login_raw(username, WRONG_PASSWORD).await;
    assert_eq!(response.status(), 401);
}

/// The 17-character id of the session behind `session`.
async fn session_id(app: &TestApp, session: &Session) -> String {
    let (status, list) = body(app.get_as("/api/v1/sessions/list", session).await).await;
    assert_eq!(status, 200, "{list}");
    list["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["current"] == true)
        .unwrap()["sessionId"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Fails if `text` holds a secret: a token, a password, a TOTP secret or
/// code, or a field that could carry one.
fn assert_no_secret(text: &str, secrets: &[&str]) {
    for secret in secrets.iter().filter(|s| !s.is_empty()) {
        assert!(
            !text.contains(secret),
            "a secret ({secret}) was sent: {text}"
        );
    }
    for key in [
        "password",
        "token",
        "authToken",
        "code",
        "secret",
        "loginToken",
    ] {
        let field = format!("\"{key}\":");
        assert!(!text.contains(&field), "a field {key} was sent: {text}");
    }
}

fn demote(app: &TestApp, guid: &str, roles: &str) -> String {
    use sessiond::db::schema::users;
    let mut conn = app.pool.get().expect("store reachable");
    let before: String = users::table
        .filter(users::guid.eq(guid))
        .select(users::roles)
        .first(&mut *conn)
        .expect("the user exists");
    diesel::update(users::table.filter(users::guid.eq(guid)))
        .set(users::roles.eq(roles))
        .execute(&mut *conn)
        .expect("change the roles");
    before
}

fn error_of(body: &Value) -> &str {
    body["error"].as_str().unwrap_or_default()
}

// ------------------------------------------------------------------ the stream

async fn live_events_arrive_in_order_with_id_event_and_data(store: Store) {
    let app = spawn_app(store).await;
    let (admin, secret) = app.admin_past_2fa().await;
    app.create_user("alice", false);
    let mut stream = Sse::open(&app, "/api/v1/sessions/events", &admin, &[]).await;
    let start = stream.opening().await;
    assert!(
        start > 0,
        "the admin's logins were recorded before the stream opened"
    );

    let first = login_from(&app, "alice", AGENTS[0]).await;
    let second = login_from(&app, "alice", AGENTS[0]).await;
    wrong_password(&app, "alice").await;
    logout(&app, &first).await;
    let second_id = session_id(&app, &second).await;

    let events = stream.events(5).await;
    let kinds: Vec<&str> = events.iter().map(|e| e.event.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "session.started",
            "session.new_device",
            "session.started",
            "login.failed",
            "session.ended"
        ]
    );
    let ids: Vec<i64> = events.iter().map(|e| e.id).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "ids rise: {ids:?}");
    assert!(
        ids[0] > start,
        "only events after the start: {ids:?} after {start}"
    );
    let alice_guid = first.user_id.as_str();
    for event in &events {
        let data = &event.payload["data"];
        assert!(
            data["eventId"].as_str().unwrap().starts_with("evt_"),
            "{data}"
        );
        assert_eq!(data["userId"], alice_guid, "{data}");
        assert!(event.payload["timestamp"].as_str().unwrap().ends_with('Z'));
    }
    let started = &events[0].payload["data"];
    assert_eq!(started["username"], "alice");
    assert_eq!(started["newDevice"], true);
    assert_eq!(
        events[2].payload["data"]["newDevice"], false,
        "the same device again"
    );
    assert_eq!(events[2].payload["data"]["sessionId"], second_id.as_str());
    assert_eq!(
        events[4].payload["data"]["sessionId"], events[0].payload["data"]["sessionId"],
        "the first session ended"
    );
    assert_eq!(events[4].payload["data"]["reason"], "logout");

    let secret = totp_rs::Secret::Raw(secret).to_encoded().to_string();
    assert_no_secret(
        &stream.text,
        &[
            &first.token,
            &second.token,
            &admin.token,
            USER_PASSWORD,
            WRONG_PASSWORD,
            &app.admin_password,
            &secret,
        ],
    );
}

async fn resuming_replays_exactly_the_events_after_the_last_id(store: Store) {
    let app = spawn_app(store).await;
    let (admin, _) = app.admin_past_2fa().await;
    app.create_user("alice", false);
    let mut live = Sse::open(&app, "/api/v1/sessions/events", &admin, &[]).await;
    live.opening().await;
    let alice = login_from(&app, "alice", AGENTS[1]).await; // started, new_device
    wrong_password(&app, "alice").await;
    logout(&app, &alice).await;
    let seen = live.events(4).await;
    drop(live);
    let ids: Vec<i64> = seen.iter().map(|e| e.id).collect();

    // From the header: the events after the second, then the next new one.
    let after = ids[1].to_string();
    let mut resumed = Sse::open(
        &app,
        "/api/v1/sessions/events",
        &admin,
        &[("Last-Event-ID", &after)],
    )
    .await;
    assert_eq!(resumed.opening().await, ids[1]);
    let replayed: Vec<i64> = resumed.events(2).await.iter().map(|e| e.id).collect();
    assert_eq!(replayed, ids[2..]);
    wrong_password(&app, "alice").await;
    let next = resumed.event().await;
    assert_eq!(next.event, "login.failed");
    assert!(next.id > ids[3]);
    drop(resumed);

    // From the query, for clients that cannot send the header.
    let path = format!("/api/v1/sessions/events?lastEventId={}", ids[2]);
    let mut resumed = Sse::open(&app, &path, &admin, &[]).await;
    assert_eq!(resumed.opening().await, ids[2]);
    let replayed: Vec<i64> = resumed.events(2).await.iter().map(|e| e.id).collect();
    assert_eq!(replayed, [ids[3], next.id]);
    drop(resumed);

    // The header wins over the query (a reconnecting EventSource sends the newer id).
    let mut resumed = Sse::open(
        &app,
        "/api/v1/sessions/events?lastEventId=0",
        &admin,
        &[("Last-Event-ID", &ids[3].to_string())],
    )
    .await;
    assert_eq!(resumed.opening().await, ids[3]);
    assert_eq!(resumed.event().await.id, next.id);
    drop(resumed);

    // An id past the newest event (seen on another store) starts from now.
    let mut ahead = Sse::open(
        &app,
        "/api/v1/sessions/events?lastEventId=1000000000000",
        &admin,
        &[],
    )
    .await;
    assert_eq!(ahead.opening().await, next.id);
    drop(ahead);

    // Without either, from now: nothing old is replayed.
    let mut fresh = Sse::open(
        &app,
        "/api/v1/sessions/events",
        &admin,
        &[("Last-Event-ID", "")],
    )
    .await;
    assert_eq!(fresh.opening().await, next.id);
    let bob = {
        app.create_user("bob", false);
        login_from(&app, "bob", AGENTS[2]).await
    };
    let first = fresh.event().await;
    assert_eq!(first.event, "session.started");
    assert_eq!(first.payload["data"]["userId"], bob.user_id.as_str());
}

async fn the_type_filter_keeps_only_those_types(store: Store) {
    let app = spawn_app(store).await;
    let (admin, _) = app.admin_past_2fa().await;
    app.create_user("alice", false);
    let mut ended = Sse::open(
        &app,
        "/api/v1/sessions/events?type=session.ended",
        &admin,
        &[],
    )
    .await;
    ended.opening().await;
    let mut some = Sse::open(
        &app,
        "/api/v1/sessions/events?type=login.failed,session.started",
        &admin,
        &[],
    )
    .await;
    some.opening().await;

    let first = login_from(&app, "alice", AGENTS[0]).await;
    wrong_password(&app, "alice").await;
    logout(&app, &first).await;
    let second = login_from(&app, "alice", AGENTS[3]).await;
    logout(&app, &second).await;

    let only_ended = ended.events(2).await;
    assert!(
        only_ended.iter().all(|e| e.event == "session.ended"),
        "{only_ended:?}"
    );
    assert_eq!(
        only_ended[1].payload["data"]["userId"],
        second.user_id.as_str()
    );
    let kinds: Vec<String> = some.events(3).await.into_iter().map(|e| e.event).collect();
    assert_eq!(
        kinds,
        ["session.started", "login.failed", "session.started"]
    );
}

async fn streams_refuse_whom_list_all_refuses_and_bad_parameters(store: Store) {
    let app = spawn_app(store).await;
    app.create_user("alice", false);
    let alice = app.login("alice", USER_PASSWORD).await;
    let (admin, _) = app.admin_past_2fa().await;

    // No credentials: 401.
    let (status, refused) = body(
        app.client
            .get(app.url("/api/v1/sessions/events"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, refused["status"].as_str()), (401, Some("error")));

    // Not an administrator: 403, whatever the parameters.
    for path in [
        "/api/v1/sessions/events",
        "/api/v1/sessions/events?type=nope",
    ] {
        let (status, refused) = body(app.get_as(path, &alice).await).await;
        assert_eq!(status, 403, "{path}: {refused}");
        assert_eq!(
            refused,
            json!({"success": false, "error": "User does not have the permissions required for this action [error-unauthorized]"})
        );
    }

    // Bad parameters: 400, each saying what to fix.
    for (path, header, expected) in [
        (
            "/api/v1/sessions/events?type=session.nope",
            None,
            "got \"session.nope\"",
        ),
        (
            "/api/v1/sessions/events?type=",
            None,
            "'type' must be event types",
        ),
        (
            "/api/v1/sessions/events?lastEventId=x",
            None,
            "'lastEventId' must be the id of an event",
        ),
        (
            "/api/v1/sessions/events?lastEventId=-4",
            None,
            "non-negative integer",
        ),
        (
            "/api/v1/sessions/events",
            Some("abc"),
            "'Last-Event-ID' must be the id of an event",
        ),
        // A good header does not hide a bad query parameter.
        (
            "/api/v1/sessions/events?lastEventId=abc",
            Some("5"),
            "'lastEventId' must be the id of an event",
        ),
        (
            "/api/v1/sessions/events?type=login.failed&type=login.failed",
            None,
            "'type' must be given once",
        ),
        (
            "/api/v1/sessions/events.me?type=login.failed",
            None,
            "each one of session.started, session.ended, session.new_device",
        ),
    ] {
        let mut request = app.client.get(app.url(path)).headers(admin.headers());
        if let Some(value) = header {
            request = request.header("Last-Event-ID", value);
        }
        let (status, refused) = body(request.send().await.unwrap()).await;
        assert_eq!(status, 400, "{path}: {refused}");
        assert_eq!(refused["errorType"], "invalid-params", "{path}: {refused}");
        assert!(error_of(&refused).contains(expected), "{path}: {refused}");
    }
    let twice = app
        .client
        .get(app.url("/api/v1/sessions/events"))
        .headers(admin.headers())
        .header("Last-Event-ID", "5")
        .header("Last-Event-ID", "7")
        .send()
        .await
        .unwrap();
    let (status, refused) = body(twice).await;
    assert_eq!(status, 400, "{refused}");
    assert!(
        error_of(&refused).contains("must be sent once"),
        "{refused}"
    );
    let (status, refused) = body(app.get_as("/api/v1/sessions/events?since=1", &admin).await).await;
    assert_eq!(status, 400);
    assert_eq!(refused["details"]["additionalProperty"], "since");

    // An administrator without a recent second factor: the 2FA error, as on list.all.
    app.end_two_factor_window(&admin);
    let (status, refused) = body(app.get_as("/api/v1/sessions/events", &admin).await).await;
    assert_eq!(status, 400, "{refused}");
    assert_eq!(refused["errorType"], "totp-required", "{refused}");
    let (list_status, list_refused) =
        body(app.get_as("/api/v1/sessions/list.all", &admin).await).await;
    assert_eq!(
        (list_status, &list_refused),
        (status, &refused),
        "the same answer as list.all"
    );
    // The caller's own stream needs no second factor.
    let mut own = Sse::open(&app, "/api/v1/sessions/events.me", &admin, &[]).await;
    own.opening().await;
}

/// Each user may hold `SESSIOND_EVENT_STREAMS_PER_USER` streams open at
/// once (past that, 429), and the instance `SESSIOND_EVENT_STREAMS` (past
/// that, 503).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_may_hold_only_so_many_streams() {
    let app = spawn_app_with(Store::Sqlite, |s| {
        s.event_streams_per_user = 3;
        s.event_streams = 4;
    })
    .await;
    app.create_user("alice", false);
    let alice = app.login("alice", USER_PASSWORD).await;
    let mut open = Vec::new();
    for _ in 0..3 {
        let mut stream = Sse::open(&app, "/api/v1/sessions/events.me", &alice, &[]).await;
        stream.opening().await;
        open.push(stream);
    }
    assert_eq!(
        app.metric("sessiond_event_streams_open").await,
        Some(open.len() as f64),
        "open streams are in /metrics"
    );
    let response = app.get_as("/api/v1/sessions/events.me", &alice).await;
    assert_eq!(response.headers()["retry-after"], "1");
    let (status, refused) = body(response).await;
    assert_eq!(status, 429, "{refused}");
    assert_eq!(refused["errorType"], "error-too-many-requests");
    assert!(
        error_of(&refused).contains("You already have 3 event streams open"),
        "{refused}"
    );
    // Another user is not held back by alice's …
    app.create_user("bob", false);
    let bob = app.login("bob", USER_PASSWORD).await;
    let mut bobs = Sse::open(&app, "/api/v1/sessions/events.me", &bob, &[]).await;
    bobs.opening().await;
    // … until the instance serves all it allows.
    let response = app.get_as("/api/v1/sessions/events.me", &bob).await;
    assert_eq!(response.headers()["retry-after"], "1");
    let (status, busy) = body(response).await;
    assert_eq!(status, 503, "{busy}");
    assert_eq!(busy["errorType"], "error-busy");
    assert!(
        error_of(&busy).contains("already serves 4 event streams"),
        "{busy}"
    );

    // A client that goes away gives its slot back when the server sees the
    // connection close, not at the next keep-alive (every 15 s).
    drop(open.pop());
    let mut open_now = None;
    for _ in 0..50 {
        open_now = app.metric("sessiond_event_streams_open").await;
        if open_now == Some(3.0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(open_now, Some(3.0), "the closed stream's slot is free");
    Sse::open(&app, "/api/v1/sessions/events.me", &alice, &[])
        .await
        .opening()
        .await;
}

async fn a_stream_ends_when_its_session_ends_or_loses_the_role(store: Store) {
    let app = spawn_app(store).await;
    let (admin, _) = app.admin_past_2fa().await;

    // The role goes: the administrators' stream ends, and cannot be opened again.
    let mut watching = Sse::open(&app, "/api/v1/sessions/events", &admin, &[]).await;
    watching.opening().await;
    let roles = demote(&app, &admin.user_id, "user");
    watching.until_end().await;
    let (status, _) = body(app.get_as("/api/v1/sessions/events", &admin).await).await;
    assert_eq!(status, 403);

    // The session ends: both kinds of stream end.
    demote(&app, &admin.user_id, &roles);
    let mut everyone = Sse::open(&app, "/api/v1/sessions/events", &admin, &[]).await;
    everyone.opening().await;
    let mut own = Sse::open(&app, "/api/v1/sessions/events.me", &admin, &[]).await;
    own.opening().await;
    logout(&app, &admin).await;
    let ended = everyone.until_end().await;
    assert!(
        ended.iter().all(|e| e.event == "session.ended"),
        "only the logout itself may come before the end: {ended:?}"
    );
    own.until_end().await;
    let (status, _) = body(app.get_as("/api/v1/sessions/events.me", &admin).await).await;
    assert_eq!(status, 401);
}

async fn a_users_own_stream_shows_only_their_session_events(store: Store) {
    let app = spawn_app(store).await;
    app.create_user("alice", false);
    app.create_user("bob", false);
    let alice = app.login("alice", USER_PASSWORD).await;
    let mut own = Sse::open(&app, "/api/v1/sessions/events.me", &alice, &[]).await;
    own.opening().await;

    let bob = login_from(&app, "bob", AGENTS[1]).await;
    wrong_password(&app, "alice").await;
    logout(&app, &bob).await;
    let other = login_from(&app, "alice", AGENTS[4]).await;
    logout(&app, &other).await;

    let events = own.events(3).await;
    let kinds: Vec<&str> = events.iter().map(|e| e.event.as_str()).collect();
    assert_eq!(
        kinds,
        ["session.started", "session.new_device", "session.ended"]
    );
    assert!(events
        .iter()
        .all(|e| e.payload["data"]["userId"] == alice.user_id.as_str()));
    assert_no_secret(
        &own.text,
        &[
            &alice.token,
            &other.token,
            &bob.token,
            USER_PASSWORD,
            WRONG_PASSWORD,
        ],
    );
}

// ------------------------------------------------------------------ the audit trail

async fn audit(app: &TestApp, session: &Session, query: &str) -> Value {
    let (status, page) = body(
        app.get_as(&format!("/api/v1/sessions/audit{query}"), session)
            .await,
    )
    .await;
    assert_eq!(status, 200, "{query}: {page}");
    assert_eq!(page["success"], true);
    assert_eq!(page["count"], page["events"].as_array().unwrap().len());
    page
}

fn audit_ids(page: &Value) -> Vec<i64> {
    page["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_i64().unwrap())
        .collect()
}

/// Every page of `query`, by cursor; the ids, in the order given.
async fn all_pages(app: &TestApp, session: &Session, query: &str) -> Vec<i64> {
    let mut ids = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..100 {
        let separator = if query.is_empty() { "?" } else { "&" };
        let path = match &cursor {
            Some(cursor) => format!("{query}{separator}cursor={cursor}"),
            None => query.to_owned(),
        };
        let page = audit(app, session, &path).await;
        ids.extend(audit_ids(&page));
        match page["nextCursor"].as_str() {
            Some(next) => {
                assert!(
                    !page["events"].as_array().unwrap().is_empty(),
                    "no empty page before the end"
                );
                cursor = Some(next.to_owned());
            }
            None => return ids,
        }
    }
    panic!("more than 100 pages");
}

/// A mix of events: logins from several devices, failures, logouts.
async fn some_history(app: &TestApp) -> (Session, Session) {
    app.create_user("alice", false);
    app.create_user("bob", false);
    let alice = login_from(app, "alice", AGENTS[0]).await;
    let bob = login_from(app, "bob", AGENTS[1]).await;
    for agent in &AGENTS[2..5] {
        let session = login_from(app, "alice", agent).await;
        logout(app, &session).await;
    }
    wrong_password(app, "alice").await;
    wrong_password(app, "bob").await;
    wrong_password(app, "nobody-at-all").await;
    (alice, bob)
}

async fn the_audit_trail_pages_without_duplicates_or_gaps(store: Store) {
    let app = spawn_app(store).await;
    let (admin, secret) = app.admin_past_2fa().await;
    let (alice, bob) = some_history(&app).await;

    let everything = audit(&app, &admin, "?count=500").await;
    assert_eq!(everything["nextCursor"], Value::Null);
    let all = audit_ids(&everything);
    assert!(all.len() >= 20, "{everything}");
    assert!(all.windows(2).all(|w| w[0] > w[1]), "newest first: {all:?}");
    // The default page is 50, so this is one page too.
    assert_eq!(audit_ids(&audit(&app, &admin, "").await), all);

    for count in [1, 3, 7] {
        let paged = all_pages(&app, &admin, &format!("?count={count}")).await;
        assert_eq!(
            paged, all,
            "count={count}: no duplicates, no gaps, same order"
        );
    }
    // A page ending exactly at the last event says so: no empty page after.
    let exact = audit(&app, &admin, &format!("?count={}", all.len())).await;
    assert_eq!(exact["nextCursor"], Value::Null);

    // The events are the stream's payloads, with their ids.
    let first = &everything["events"][0];
    let keys: Vec<&String> = first.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["id", "type", "timestamp", "data"]);
    assert!(first["data"]["eventId"]
        .as_str()
        .unwrap()
        .starts_with("evt_"));

    let secret = totp_rs::Secret::Raw(secret).to_encoded().to_string();
    assert_no_secret(
        &everything.to_string(),
        &[
            &alice.token,
            &bob.token,
            &admin.token,
            USER_PASSWORD,
            WRONG_PASSWORD,
            &app.admin_password,
            &secret,
        ],
    );
    // The name typed for an unknown user is not kept.
    assert!(!everything.to_string().contains("nobody-at-all"));
}

async fn the_audit_trail_filters_by_user_type_and_time(store: Store) {
    let app = spawn_app(store).await;
    let (admin, _) = app.admin_past_2fa().await;
    let (alice, _) = some_history(&app).await;
    let everything = audit(&app, &admin, "?count=500").await;
    let events = everything["events"].as_array().unwrap();

    // By user.
    let expected: Vec<i64> = events
        .iter()
        .filter(|e| e["data"]["userId"] == alice.user_id.as_str())
        .map(|e| e["id"].as_i64().unwrap())
        .collect();
    assert!(expected.len() >= 8);
    let query = format!("?userId={}&count=2", alice.user_id);
    assert_eq!(all_pages(&app, &admin, &query).await, expected);
    let upper = format!("?userId={}", alice.user_id.to_uppercase());
    assert_eq!(
        audit_ids(&audit(&app, &admin, &upper).await),
        expected,
        "any UUID form"
    );
    let nobody = audit(&app, &admin, "?userId=83bde819-ec08-4cee-b635-884145630d0b").await;
    assert_eq!(
        (nobody["count"].as_i64(), &nobody["nextCursor"]),
        (Some(0), &Value::Null)
    );

    // By type.
    let of_types = |types: &[&str]| -> Vec<i64> {
        events
            .iter()
            .filter(|e| types.contains(&e["type"].as_str().unwrap()))
            .map(|e| e["id"].as_i64().unwrap())
            .collect()
    };
    let failed = audit(&app, &admin, "?type=login.failed").await;
    assert_eq!(audit_ids(&failed), of_types(&["login.failed"]));
    assert_eq!(failed["count"], 3);
    let both = all_pages(
        &app,
        &admin,
        "?type=session.ended,session.new_device&count=2",
    )
    .await;
    assert_eq!(both, of_types(&["session.ended", "session.new_device"]));
    let mixed = format!("?type=session.started&userId={}", alice.user_id);
    let expected: Vec<i64> = events
        .iter()
        .filter(|e| e["type"] == "session.started" && e["data"]["userId"] == alice.user_id.as_str())
        .map(|e| e["id"].as_i64().unwrap())
        .collect();
    assert_eq!(audit_ids(&audit(&app, &admin, &mixed).await), expected);
    assert_eq!(expected.len(), 4);

    // By time: events before a moment, and from it on.
    let before = all_pages(&app, &admin, "").await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    let moment = chrono::Utc::now();
    tokio::time::sleep(Duration::from_millis(20)).await;
    let late = login_from(&app, "alice", AGENTS[5]).await;
    logout(&app, &late).await;
    let iso = moment.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let until = audit_ids(&audit(&app, &admin, &format!("?until={iso}&count=500")).await);
    assert_eq!(until, before, "until: what happened before the moment");
    let since = audit_ids(&audit(&app, &admin, &format!("?since={iso}")).await);
    assert_eq!(
        since.len(),
        3,
        "since: the late login (started, new device) and logout"
    );
    assert!(since.iter().all(|id| id > &before[0]));
    // The same moment with an offset, its `+` encoded or not.
    let berlin = moment
        .with_timezone(&chrono::FixedOffset::east_opt(3600).unwrap())
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    for written in [berlin.replace('+', "%2B"), berlin.clone()] {
        assert_eq!(
            audit_ids(&audit(&app, &admin, &format!("?since={written}")).await),
            since,
            "{written}"
        );
    }
    let range = format!(
        "?since={iso}&until={}",
        (moment + chrono::Duration::hours(1)).to_rfc3339()
    );
    assert_eq!(audit_ids(&audit(&app, &admin, &range).await), since);

    // Times finer than the millisecond the store keeps select exactly: the
    // newest event (at T) is at or after T, not at or after T + 1 ns, and
    // before T + 1 ns.
    let newest = audit(&app, &admin, "?count=1").await;
    let (id, at) = (
        newest["events"][0]["id"].as_i64().unwrap(),
        newest["events"][0]["timestamp"]
            .as_str()
            .unwrap()
            .to_owned(),
    );
    let finer = |nanos: &str| at.replace('Z', &format!("{nanos}Z"));
    let first = |query: String| {
        let app = &app;
        let admin = &admin;
        async move { audit_ids(&audit(app, admin, &query).await).first().copied() }
    };
    assert_eq!(first(format!("?since={at}")).await, Some(id));
    assert_ne!(first(format!("?since={}", finer("000001"))).await, Some(id));
    assert_eq!(first(format!("?until={}", finer("000001"))).await, Some(id));
    let between = format!("?since={}&until={}", finer("000001"), finer("000002"));
    assert_eq!(
        audit_ids(&audit(&app, &admin, &between).await),
        Vec::<i64>::new(),
        "no millisecond lies between: no events, and no error"
    );

    // A cursor belongs to its filters.
    let page = audit(&app, &admin, "?type=login.failed&count=1").await;
    let cursor = page["nextCursor"].as_str().unwrap();
    let (status, refused) = body(
        app.get_as(
            &format!("/api/v1/sessions/audit?type=session.ended&count=1&cursor={cursor}"),
            &admin,
        )
        .await,
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(refused["errorType"], "error-invalid-cursor");
    assert!(error_of(&refused).contains("other filters"), "{refused}");
}

async fn bad_audit_parameters_get_400_saying_what_to_fix(store: Store) {
    let app = spawn_app(store).await;
    app.create_user("alice", false);
    let alice = app.login("alice", USER_PASSWORD).await;
    let (admin, _) = app.admin_past_2fa().await;
    wrong_password(&app, "alice").await;
    let page = audit(&app, &admin, "?count=1").await;
    let cursor = page["nextCursor"].as_str().unwrap().to_owned();
    let mut altered = cursor.clone().into_bytes();
    altered[12] = if altered[12] == b'A' { b'B' } else { b'A' };
    let altered = String::from_utf8(altered).unwrap();

    for (query, error_type, expected) in [
        (
            "count=-1",
            "invalid-params",
            "'count' must be a non-negative integer, got \"-1\"",
        ),
        (
            "count=ten",
            "invalid-params",
            "'count' must be a non-negative integer",
        ),
        (
            "userId=alice",
            "invalid-params",
            "'userId' must be a user's id (a UUID",
        ),
        ("type=login.nope", "invalid-params", "got \"login.nope\""),
        ("type=login.failed,", "invalid-params", "got \"\""),
        (
            "since=yesterday",
            "invalid-params",
            "'since' must be an ISO-8601 timestamp",
        ),
        (
            "until=2025-01-31",
            "invalid-params",
            "'until' must be an ISO-8601 timestamp",
        ),
        (
            "since=2025-02-01T00:00:00Z&until=2025-01-31T00:00:00Z",
            "invalid-params",
            "'since' must be before 'until'",
        ),
        (
            "since=2025-02-01T00:00:00Z&until=2025-02-01T00:00:00Z",
            "invalid-params",
            "'since' must be before 'until'",
        ),
        (
            "cursor=bm90LWEtY3Vyc29y",
            "error-invalid-cursor",
            "not one this service issued",
        ),
        (
            &format!("cursor={altered}"),
            "error-invalid-cursor",
            "not one this service issued",
        ),
        (
            "count=5&count=6",
            "invalid-params",
            "'count' must be given once",
        ),
    ] {
        let (status, refused) = body(
            app.get_as(&format!("/api/v1/sessions/audit?{query}"), &admin)
                .await,
        )
        .await;
        assert_eq!(status, 400, "{query}: {refused}");
        assert_eq!(refused["errorType"], error_type, "{query}: {refused}");
        assert!(error_of(&refused).contains(expected), "{query}: {refused}");
    }
    let (status, refused) = body(app.get_as("/api/v1/sessions/audit?offset=5", &admin).await).await;
    assert_eq!(status, 400);
    assert_eq!(refused["details"]["additionalProperty"], "offset");
    // Clamped, not refused: a page of at most 500.
    let (status, _) = body(
        app.get_as("/api/v1/sessions/audit?count=100000", &admin)
            .await,
    )
    .await;
    assert_eq!(status, 200);
    // The cursor of a list is not an audit cursor.
    let (_, list) = body(
        app.get_as("/api/v1/sessions/list.all?count=1", &admin)
            .await,
    )
    .await;
    if let Some(list_cursor) = list["nextCursor"].as_str() {
        let (status, _) = body(
            app.get_as(
                &format!("/api/v1/sessions/audit?cursor={list_cursor}"),
                &admin,
            )
            .await,
        )
        .await;
        assert_eq!(status, 400);
    }

    // Who may ask, in the order list.all checks: 401, 403 (before the
    // parameters), then the second factor.
    let (status, _) = body(
        app.client
            .get(app.url("/api/v1/sessions/audit"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 401);
    let (status, refused) = body(app.get_as("/api/v1/sessions/audit?count=x", &alice).await).await;
    assert_eq!(status, 403, "{refused}");
    app.end_two_factor_window(&admin);
    let (status, refused) = body(app.get_as("/api/v1/sessions/audit", &admin).await).await;
    assert_eq!(
        (status, refused["errorType"].as_str()),
        (400, Some("totp-required"))
    );
}

/// A change that ends thousands of sessions records one event for each,
/// written many rows to an INSERT (more than one INSERT's worth here).
async fn ending_thousands_of_sessions_records_an_event_for_each(store: Store) {
    let app = spawn_app(store).await;
    let (admin, _) = app.admin_past_2fa().await;
    app.create_user("alice", false);
    let alice = app.login("alice", USER_PASSWORD).await;
    app.bulk_sessions("alice", 2_500);
    let (status, ended) = body(
        app.post_as("/api/v1/sessions/logout.others", &alice, &json!({}))
            .await,
    )
    .await;
    assert_eq!(status, 200, "{ended}");
    assert_eq!(ended["count"], 2_500, "{ended}");
    let query = format!("?type=session.ended&userId={}&count=500", alice.user_id);
    let ids = all_pages(&app, &admin, &query).await;
    assert_eq!(ids.len(), 2_500);
    let distinct: std::collections::HashSet<_> = ids.iter().collect();
    assert_eq!(distinct.len(), 2_500, "each once");
}
