//! Snapshots of the documented response bodies of every surface, with their
//! HTTP status: the Rocket.Chat routes, the admin routes and `POST /api`.
//!
//! Each test runs on both stores and asserts the same snapshot names, so a
//! body that differs between SQLite and Postgres fails. What changes from run
//! to run (tokens, ids, guids, times, the port) is redacted, each value
//! checked for its form first, so the snapshot still pins every field's name,
//! order and type and every fixed value. The files are in `snapshots/`; with
//! `CI=true` a missing or different snapshot fails and none is written.
//! `INSTA_UPDATE=always` rewrites them, each store over the other, so check
//! afterwards with `CI=true` that both stores agree with what was written.

use insta::internals::{Content, ContentPath, Redaction};
use serde_json::{json, Value};

use crate::helpers::{body, spawn_app, Session, Store, TestApp, AGENTS, USER_PASSWORD};
use crate::on_both_stores;

const ADMIN: &str = "/api/admin/v1/authenticated-sessions";
/// A well-formed guid that names no user.
const UNKNOWN_GUID: &str = "83bde819-ec08-4cee-b635-884145630d0b";
/// A well-formed session id that names no session.
const UNKNOWN_SESSION: &str = "QoYYFw2t9oKks2niG";

/// Makes the redaction for one selector.
type Redact = fn() -> Redaction;

/// Selectors and the redaction each gets.
type Redactions<'a> = &'a [(&'a str, Redact)];

/// Asserts `reply` against the snapshot `snapshots/<name>.snap`: the same
/// name on both stores, and without the module's name in front.
fn assert_reply(name: &str, request: &str, reply: &Value, redactions: Redactions<'_>) {
    let mut settings = insta::Settings::clone_current();
    settings.set_prepend_module_to_snapshot(false);
    settings.set_description(request);
    for (selector, redaction) in redactions {
        settings.add_redaction(selector, redaction());
    }
    settings.bind(|| insta::assert_json_snapshot!(name, reply));
}

on_both_stores!(
    rocket_chat_session_bodies,
    rocket_chat_error_bodies,
    rocket_chat_admin_bodies,
    admin_surface_bodies,
    json_action_bodies,
);

/// The status and the JSON body of a response.
async fn reply(response: reqwest::Response) -> Value {
    let (status, body) = body(response).await;
    json!({"status": status, "body": body})
}

/// Replaces a string after checking its form; the label names what it was.
fn checked(label: &'static str, valid: fn(&str) -> bool) -> Redaction {
    insta::dynamic_redaction(move |value: Content, path: ContentPath<'_>| {
        let text = value
            .as_str()
            .unwrap_or_else(|| panic!("{path}: a {label} is a string, not {value:?}"));
        assert!(valid(text), "{path}: not a {label}: {text:?}");
        format!("[{label}]")
    })
}

/// Replaces an integer after checking it lies in `range`.
fn integer(label: &'static str, range: std::ops::RangeInclusive<i64>) -> Redaction {
    insta::dynamic_redaction(move |value: Content, path: ContentPath<'_>| {
        let number = value
            .as_i64()
            .unwrap_or_else(|| panic!("{path}: a {label} is an integer, not {value:?}"));
        assert!(range.contains(&number), "{path}: not a {label}: {number}");
        format!("[{label}]")
    })
}

/// A session token: 32 bytes of URL-safe base64, unpadded.
fn token() -> Redaction {
    checked("authToken", is_token)
}

fn is_token(text: &str) -> bool {
    text.len() == 43
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// A token as `listSessions` shows other sessions: six characters and `…`.
fn token_or_hint() -> Redaction {
    insta::dynamic_redaction(|value: Content, path: ContentPath<'_>| {
        let text = value.as_str().unwrap_or_default();
        if is_token(text) {
            return "[authToken]".to_owned();
        }
        let hint = text.strip_suffix('…').filter(|head| head.len() == 6);
        assert!(
            hint.is_some(),
            "{path}: neither a token nor a hint: {value:?}"
        );
        "[hint]…".to_owned()
    })
}

fn is_guid(text: &str) -> bool {
    uuid::Uuid::parse_str(text).is_ok_and(|id| id.hyphenated().to_string() == text)
}

fn guid() -> Redaction {
    checked("guid", is_guid)
}

/// 17 characters of Meteor's alphabet, as Rocket.Chat's session ids.
fn is_session_id(text: &str) -> bool {
    const ALPHABET: &[u8] = b"23456789ABCDEFGHJKLMNPQRSTWXYZabcdefghijkmnopqrstuvwxyz";
    text.len() == 17 && text.bytes().all(|b| ALPHABET.contains(&b))
}

fn session_id() -> Redaction {
    checked("sessionId", is_session_id)
}

/// ISO-8601 UTC with milliseconds, as the Rocket.Chat surface and the JSON
/// action API write times.
fn iso_millis() -> Redaction {
    checked("iso-millis", |text| {
        text.len() == 24
            && text.ends_with('Z')
            && text.as_bytes()[19] == b'.'
            && chrono::DateTime::parse_from_rfc3339(text).is_ok()
    })
}

/// ISO-8601 UTC to the second, as the admin surface writes times.
fn iso_seconds() -> Redaction {
    checked("iso-seconds", |text| {
        text.len() == 20
            && text.ends_with('Z')
            && chrono::DateTime::parse_from_rfc3339(text).is_ok()
    })
}

/// The stored token hash: SHA-256 in standard base64.
fn token_hash() -> Redaction {
    checked("sha256-base64", |text| {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD
            .decode(text)
            .is_ok_and(|bytes| bytes.len() == 32)
    })
}

/// The `Host` the client sent: this machine, on the test server's port.
fn host() -> Redaction {
    insta::dynamic_redaction(|value: Content, path: ContentPath<'_>| {
        let text = value.as_str().unwrap_or_default();
        let port = text
            .strip_prefix("127.0.0.1:")
            .and_then(|p| p.parse::<u16>().ok());
        assert!(port.is_some(), "{path}: not this machine's host: {value:?}");
        "127.0.0.1:[port]".to_owned()
    })
}

/// The search term: device name, type and OS, then the session id and the
/// user's guid. The fixed head stays.
fn search_term() -> Redaction {
    insta::dynamic_redaction(|value: Content, path: ContentPath<'_>| {
        let text = value.as_str().unwrap_or_default();
        let split = text.len().saturating_sub(17 + 36);
        let (head, tail) = text.split_at(split);
        let (id, guid) = tail.split_at(tail.len().min(17));
        assert!(
            is_session_id(id) && is_guid(guid),
            "{path}: not a search term: {value:?}"
        );
        format!("{head}[sessionId][guid]")
    })
}

fn cursor() -> Redaction {
    checked("cursor", |text| !text.is_empty())
}

/// A row id in the store.
fn row_id() -> Redaction {
    integer("id", 1..=i64::MAX)
}

fn day() -> Redaction {
    integer("day", 1..=31)
}

fn month() -> Redaction {
    integer("month", 1..=12)
}

fn year() -> Redaction {
    integer("year", 2024..=9999)
}

/// A Rocket.Chat list item.
const LIST_ITEM: [(&str, Redact); 5] = [
    (".body.sessions[].sessionId", session_id),
    (".body.sessions[]._id", session_id),
    (".body.sessions[].userId", guid),
    (".body.sessions[].host", host),
    (".body.sessions[].loginAt", iso_millis),
];

/// The full session document of `info`.
const INFO: Redactions<'static> = &[
    (".body._id", session_id),
    (".body.sessionId", session_id),
    (".body.instanceId", guid),
    (".body.loginToken", token_hash),
    (".body.host", host),
    (".body.userId", guid),
    (".body.loginAt", iso_millis),
    (".body.day", day),
    (".body.month", month),
    (".body.year", year),
    (".body.searchTerm", search_term),
    (".body.createdAt", iso_millis),
    (".body._updatedAt", iso_millis),
    (".body.closedAt", iso_millis),
    (".body.lastActivityAt", iso_millis),
];

/// A session as the JSON action API describes it, in `result`.
const DESCRIBED: Redactions<'static> = &[
    (".body.result.authToken", token),
    (".body.result.sessionStartTimestamp", iso_millis),
    (".body.result.sessionLastAccessedTimestamp", iso_millis),
    (".body.result.sessionExpirationTimestamp", iso_millis),
    (".body.authToken", token),
];

/// The envelope's echo of the caller's token.
const ENVELOPE_TOKEN: Redactions<'static> = &[(".body.authToken", token)];

/// `GET path` as `session`: status and body.
async fn get(app: &TestApp, path: &str, session: &Session) -> Value {
    reply(app.get_as(path, session).await).await
}

/// `POST path` as `session` with a JSON body: status and body.
async fn post(app: &TestApp, path: &str, session: &Session, request: Value) -> Value {
    reply(app.post_as(path, session, &request).await).await
}

/// `POST /api` with a JSON body: status and body.
async fn action(app: &TestApp, request: Value) -> Value {
    reply(app.post_json("/api", &request).await).await
}

/// The session id of the caller's own session, from its list.
async fn own_session_id(app: &TestApp, session: &Session) -> String {
    let page = get(app, "/api/v1/sessions/list", session).await;
    assert_eq!(page["status"], 200, "{page}");
    page["body"]["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["current"] == true)
        .and_then(|s| s["sessionId"].as_str())
        .unwrap()
        .to_owned()
}

async fn rocket_chat_session_bodies(store: Store) {
    let app = spawn_app(store).await;
    app.create_user("alice", false);
    // Chrome on Windows (the client's own agent), Firefox on Windows, Chrome
    // on Android: oldest first.
    let login = reply(app.login_raw("alice", USER_PASSWORD).await).await;
    assert_reply(
        "rocket_chat_login",
        "POST /api/v1/login",
        &login,
        &[
            (".body.data.userId", guid),
            (".body.data.authToken", token),
            (".body.data.me._id", guid),
            (".body.data.me.createdAt", iso_millis),
            (".body.data.me._updatedAt", iso_millis),
        ],
    );
    let oldest = Session {
        user_id: login["body"]["data"]["userId"].as_str().unwrap().into(),
        token: login["body"]["data"]["authToken"].as_str().unwrap().into(),
    };
    let middle = app.login_from("alice", AGENTS[1]).await;
    let newest = app.login_from("alice", AGENTS[2]).await;

    let me = get(&app, "/api/v1/me", &newest).await;
    assert_reply(
        "rocket_chat_me",
        "GET /api/v1/me",
        &me,
        &[
            (".body._id", guid),
            (".body.createdAt", iso_millis),
            (".body._updatedAt", iso_millis),
        ],
    );

    // Two of three: the caller's session and the one before it, and a cursor.
    let list = get(&app, "/api/v1/sessions/list?count=2", &newest).await;
    let mut redactions = LIST_ITEM.to_vec();
    redactions.push((".body.nextCursor", cursor));
    assert_reply(
        "rocket_chat_sessions_list",
        "GET /api/v1/sessions/list?count=2",
        &list,
        &redactions,
    );

    let newest_id = own_session_id(&app, &newest).await;
    let info_path = |id: &str| format!("/api/v1/sessions/info?sessionId={id}");
    let info = get(&app, &info_path(&newest_id), &newest).await;
    assert_reply(
        "rocket_chat_sessions_info",
        "GET /api/v1/sessions/info?sessionId=<the caller's>",
        &info,
        INFO,
    );

    let middle_id = own_session_id(&app, &middle).await;
    let logout_me = post(
        &app,
        "/api/v1/sessions/logout.me",
        &newest,
        json!({"sessionId": middle_id}),
    )
    .await;
    assert_reply(
        "rocket_chat_sessions_logout_me",
        "POST /api/v1/sessions/logout.me",
        &logout_me,
        &[(".body.sessionId", session_id)],
    );
    // An ended session of one's own is still shown, now with closedAt.
    let ended = get(&app, &info_path(&middle_id), &newest).await;
    assert_reply(
        "rocket_chat_sessions_info_ended",
        "GET /api/v1/sessions/info?sessionId=<an ended one of the caller's>",
        &ended,
        INFO,
    );

    let others = post(&app, "/api/v1/sessions/logout.others", &newest, json!({})).await;
    assert_reply(
        "rocket_chat_sessions_logout_others",
        "POST /api/v1/sessions/logout.others",
        &others,
        &[],
    );
    assert_eq!(app.get_as("/api/v1/me", &oldest).await.status(), 401);
}

async fn rocket_chat_error_bodies(store: Store) {
    let app = spawn_app(store).await;
    app.create_user("alice", false);
    let alice = app.login("alice", USER_PASSWORD).await;
    let forged = Session {
        user_id: alice.user_id.clone(),
        token: "not-the-token-of-any-session".into(),
    };
    let sort = r#"{"_user.username":1}"#;
    let sort_keys = app
        .client
        .get(app.url("/api/v1/sessions/list"))
        .headers(alice.headers())
        .query(&[("sort", sort)])
        .send()
        .await
        .expect("request");

    let cases = [
        (
            "rocket_chat_error_not_logged_in",
            "GET /api/v1/me with an unknown token",
            get(&app, "/api/v1/me", &forged).await,
        ),
        (
            "rocket_chat_error_login_failed",
            "POST /api/v1/login with a wrong password",
            reply(app.login_raw("alice", "not the password").await).await,
        ),
        (
            "rocket_chat_error_forbidden",
            "GET /api/v1/sessions/list.all as a user",
            get(&app, "/api/v1/sessions/list.all", &alice).await,
        ),
        (
            "rocket_chat_error_session_not_found",
            "GET /api/v1/sessions/info?sessionId=<unknown>",
            get(
                &app,
                &format!("/api/v1/sessions/info?sessionId={UNKNOWN_SESSION}"),
                &alice,
            )
            .await,
        ),
        (
            "rocket_chat_error_invalid_params",
            "GET /api/v1/sessions/list?foo=1",
            get(&app, "/api/v1/sessions/list?foo=1", &alice).await,
        ),
        (
            "rocket_chat_error_invalid_sort_keys",
            r#"GET /api/v1/sessions/list?sort={"_user.username":1}"#,
            reply(sort_keys).await,
        ),
    ];
    for (name, request, reply) in cases {
        assert_reply(name, request, &reply, &[]);
    }
}

async fn rocket_chat_admin_bodies(store: Store) {
    let app = spawn_app(store).await;
    app.create_user("alice", false);
    app.login_from("alice", AGENTS[3]).await;
    let list_all = "/api/v1/sessions/list.all";

    // Before enrolling, the admin is told how to.
    let unenrolled = app.login_admin().await;
    let enroll = reply(
        app.get_with_code(list_all, &unenrolled, Some("123456"))
            .await,
    )
    .await;
    assert_reply(
        "rocket_chat_error_totp_required_not_enrolled",
        "GET /api/v1/sessions/list.all as an admin without TOTP",
        &enroll,
        &[],
    );

    let (admin, _) = app.admin_past_2fa().await;
    let page = get(&app, list_all, &admin).await;
    assert_reply(
        "rocket_chat_sessions_list_all",
        "GET /api/v1/sessions/list.all",
        &page,
        &LIST_ITEM,
    );

    app.end_two_factor_window(&admin);
    let required = reply(app.get_with_code(list_all, &admin, None).await).await;
    assert_reply(
        "rocket_chat_error_totp_required",
        "GET /api/v1/sessions/list.all once the second-factor window has passed",
        &required,
        &[],
    );
    let invalid = reply(app.get_with_code(list_all, &admin, Some("000000")).await).await;
    assert_reply(
        "rocket_chat_error_totp_invalid",
        "GET /api/v1/sessions/list.all with x-2fa-code: 000000",
        &invalid,
        &[],
    );
}

/// The paging headers of an admin list, as a small JSON object.
fn paging_headers(response: &reqwest::Response) -> Value {
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    };
    json!({"X-Total-Count": header("x-total-count"), "Link": header("link")})
}

async fn admin_surface_bodies(store: Store) {
    let app = spawn_app(store).await;
    app.create_user("alice", false);
    app.create_user("bob", false);
    // Chrome on Windows, then Safari on an iPhone.
    let alice = app.login_from("alice", AGENTS[0]).await;
    app.login_from("alice", AGENTS[3]).await;
    let bob = app.login_from("bob", AGENTS[1]).await;
    let (admin, _) = app.admin_past_2fa().await;

    let list = get(&app, &format!("{ADMIN}/list"), &admin).await;
    assert_reply(
        "admin_list",
        "GET /api/admin/v1/authenticated-sessions/list",
        &list,
        &[(".body[].UserGuid", guid)],
    );
    let paged = app
        .get_as(&format!("{ADMIN}/list?page=2&pageSize=1"), &admin)
        .await;
    assert_eq!(paged.status(), 200);
    assert_reply(
        "admin_list_headers",
        "GET /api/admin/v1/authenticated-sessions/list?page=2&pageSize=1: X-Total-Count and Link",
        &paging_headers(&paged),
        &[],
    );

    let user_sessions = format!("{ADMIN}/user-sessions/{}", alice.user_id);
    let sessions = get(&app, &user_sessions, &admin).await;
    assert_reply(
        "admin_user_sessions",
        "GET /api/admin/v1/authenticated-sessions/user-sessions/{guid}",
        &sessions,
        &[
            (".body[].ID", row_id),
            (".body[].UserID", row_id),
            (".body[].UserGuid", guid),
            (".body[].LastUpdated", iso_seconds),
            (".body[].ExpirationDate", iso_seconds),
        ],
    );

    let revoke = format!("{ADMIN}/revoke");
    let newest = json!({"Session": sessions["body"][0]["ID"]});
    let revoked = post(&app, &revoke, &admin, newest.clone()).await;
    let bobs = json!({"UserGuid": bob.user_id});
    let revoked_user = post(&app, &format!("{ADMIN}/revoke-user"), &admin, bobs).await;
    assert_eq!(app.get_as("/api/v1/me", &bob).await.status(), 401);
    let cases = [
        (
            "admin_revoke",
            "POST /api/admin/v1/authenticated-sessions/revoke",
            revoked,
        ),
        (
            "admin_revoke_user",
            "POST /api/admin/v1/authenticated-sessions/revoke-user",
            revoked_user,
        ),
        (
            "admin_error_invalid_request",
            "GET /api/admin/v1/authenticated-sessions/list?page=0",
            get(&app, &format!("{ADMIN}/list?page=0"), &admin).await,
        ),
        (
            "admin_error_no_active_session",
            "POST /api/admin/v1/authenticated-sessions/revoke for an ended session",
            post(&app, &revoke, &admin, newest).await,
        ),
        (
            "admin_error_user_not_found",
            "GET /api/admin/v1/authenticated-sessions/user-sessions/{unknown guid}",
            get(
                &app,
                &format!("{ADMIN}/user-sessions/{UNKNOWN_GUID}"),
                &admin,
            )
            .await,
        ),
    ];
    for (name, request, reply) in cases {
        assert_reply(name, request, &reply, &[]);
    }
}

async fn json_action_bodies(store: Store) {
    let app = spawn_app(store).await;
    app.create_user("alice", false);
    // A session from the Rocket.Chat surface first, seen here by its hint.
    app.login_from("alice", AGENTS[4]).await;

    let created = action(
        &app,
        json!({"requestId": "1", "api": "admin", "action": "createSession",
               "params": {"username": "alice", "password": USER_PASSWORD, "description": "nightly export"}}),
    )
    .await;
    assert_reply(
        "json_action_create_session",
        "POST /api createSession",
        &created,
        DESCRIBED,
    );
    let auth_token = created["body"]["authToken"].clone();

    let listed = action(
        &app,
        json!({"requestId": "2", "action": "listSessions", "authToken": auth_token}),
    )
    .await;
    assert_reply(
        "json_action_list_sessions",
        "POST /api listSessions",
        &listed,
        &[
            (".body.result.sessions[].authToken", token_or_hint),
            (".body.authToken", token),
        ],
    );

    let described = action(
        &app,
        json!({"requestId": "3", "action": "describeSessions", "authToken": auth_token}),
    )
    .await;
    assert_reply(
        "json_action_describe_sessions",
        "POST /api describeSessions",
        &described,
        &[
            (".body.result.sessions[].authToken", token_or_hint),
            (".body.result.sessions[].sessionStartTimestamp", iso_millis),
            (
                ".body.result.sessions[].sessionLastAccessedTimestamp",
                iso_millis,
            ),
            (
                ".body.result.sessions[].sessionExpirationTimestamp",
                iso_millis,
            ),
            (".body.authToken", token),
        ],
    );

    let altered = action(
        &app,
        json!({"requestId": "4", "action": "alterSession", "authToken": auth_token,
               "params": {"description": "renamed", "idleConnectionTimeoutSeconds": 120,
                          "defaultDebug": "min", "defaultResponseOptions": {"dataFormat": "arrays"}}}),
    )
    .await;
    assert_reply(
        "json_action_alter_session",
        "POST /api alterSession",
        &altered,
        DESCRIBED,
    );

    // Then the replies that carry no session: the token, if any, is echoed.
    let with_token = |id: &str, action: &str| json!({"requestId": id, "action": action, "authToken": auth_token});
    let bad_json = app
        .client
        .post(app.url("/api"))
        .header("Content-Type", "application/json")
        .body(r#"{"action": "#)
        .send()
        .await
        .expect("request");
    let cases = [
        (
            "json_action_ping_session",
            "POST /api pingSession",
            action(&app, with_token("5", "pingSession")).await,
        ),
        (
            "json_action_delete_session",
            "POST /api deleteSession",
            action(&app, with_token("6", "deleteSession")).await,
        ),
        (
            "json_action_error_no_session",
            "POST /api listSessions with the token of an ended session",
            action(&app, with_token("7", "listSessions")).await,
        ),
        (
            "json_action_error_bad_json",
            "POST /api with a body that is not JSON",
            reply(bad_json).await,
        ),
        (
            "json_action_error_unknown_action",
            "POST /api with an unknown action",
            action(&app, json!({"requestId": 8, "action": "dance"})).await,
        ),
        (
            "json_action_error_missing_auth_token",
            "POST /api listSessions without authToken",
            action(&app, json!({"requestId": 9, "action": "listSessions"})).await,
        ),
    ];
    for (name, request, reply) in cases {
        assert_reply(name, request, &reply, ENVELOPE_TOKEN);
    }
}
