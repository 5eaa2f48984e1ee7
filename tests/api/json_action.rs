//! `POST /api`: the JSON action API of the SPEC section, every action and
//! error code, the response options, and how its sessions meet the other
//! surfaces.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Map, Value};
use sessiond::db::schema::sessions;
use sessiond::domain::token::AuthToken;

use crate::helpers::{
    body, current_code, spawn_app, spawn_app_with, Store, TestApp, USER_PASSWORD,
};
use crate::on_both_stores;

const NO_SESSION: &str = "'authToken' does not match any existing session. Use a valid 'authToken' or use 'createSession' to create a valid 'authToken'.";
const BAD_CREDENTIALS: &str = "Invalid username or password.";
const ACTIONS: &str =
    "createSession, listSessions, describeSessions, alterSession, deleteSession or pingSession";

/// Sends a JSON body to `POST /api`; every reply must be HTTP 200 JSON.
async fn api(app: &TestApp, request: &Value) -> Value {
    let (status, reply) = body(app.post_json("/api", request).await).await;
    assert_eq!(status, 200, "{request}: {reply}");
    reply
}

/// Sends raw bytes to `POST /api`.
async fn api_raw(app: &TestApp, bytes: Vec<u8>) -> (u16, Value) {
    let response = app
        .client
        .post(app.url("/api"))
        .header("Content-Type", "application/json")
        .body(bytes)
        .send()
        .await
        .expect("request");
    body(response).await
}

/// createSession for `username`; returns the reply.
async fn create_as(app: &TestApp, username: &str, params: Value) -> Value {
    let mut params = params;
    params["username"] = json!(username);
    params["password"] = json!(USER_PASSWORD);
    api(app, &json!({"action": "createSession", "params": params})).await
}

/// A new session for `username` made through createSession; returns its token.
async fn token_for(app: &TestApp, username: &str) -> String {
    let reply = create_as(app, username, json!({})).await;
    assert_eq!(reply["errorCode"], 0, "{reply}");
    reply["result"]["authToken"].as_str().unwrap().to_owned()
}

fn admin_token_request(app: &TestApp) -> Value {
    json!({"action": "createSession", "params": {"username": "admin", "password": app.admin_password}})
}

async fn admin_token(app: &TestApp) -> String {
    let reply = api(app, &admin_token_request(app)).await;
    assert_eq!(reply["errorCode"], 0, "{reply}");
    reply["result"]["authToken"].as_str().unwrap().to_owned()
}

/// `(errorCode, errorMessage)` of a reply.
fn error(reply: &Value) -> (i64, &str) {
    (
        reply["errorCode"]
            .as_i64()
            .expect("errorCode is an integer"),
        reply["errorMessage"]
            .as_str()
            .expect("errorMessage is a string"),
    )
}

fn keys(value: &Value) -> Vec<&str> {
    value
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect()
}

fn is_iso_millis(value: &Value) -> bool {
    let text = value.as_str().unwrap_or_default();
    text.len() == 24 && text.ends_with('Z') && chrono::DateTime::parse_from_rfc3339(text).is_ok()
}

fn parse_time(value: &Value) -> NaiveDateTime {
    chrono::DateTime::parse_from_rfc3339(value.as_str().unwrap())
        .unwrap()
        .naive_utc()
}

fn hash(token: &str) -> String {
    AuthToken::parse(token).unwrap().hash().as_str().to_owned()
}

const DESCRIPTION_COLUMNS: [&str; 11] = [
    "authToken",
    "username",
    "description",
    "idleConnectionTimeoutSeconds",
    "permanentSession",
    "defaultApi",
    "defaultDebug",
    "defaultResponseOptions",
    "sessionStartTimestamp",
    "sessionLastAccessedTimestamp",
    "sessionExpirationTimestamp",
];

on_both_stores!(
    create_session_returns_the_token_and_the_session_with_timestamps,
    create_session_stores_description_timeouts_and_defaults,
    create_session_checks_its_params,
    bad_credentials_get_the_same_answer_for_unknown_users,
    repeated_bad_credentials_are_throttled,
    a_user_with_totp_must_send_a_code_to_create_a_session,
    action_names_ignore_case_and_api_fields_are_accepted,
    request_ids_are_echoed_exactly_as_given,
    list_sessions_shows_the_callers_sessions_with_only_its_own_token,
    admins_list_everyones_sessions_without_seeing_their_tokens,
    username_filter_narrows_the_list_and_checks_its_entries,
    describe_sessions_without_tokens_describes_the_callers_sessions,
    describe_sessions_by_token_needs_admin_for_other_accounts,
    alter_session_changes_description_timeout_and_defaults,
    alter_session_cannot_change_the_username_or_make_a_session_permanent,
    delete_session_ends_the_session_and_unknown_tokens_only_warn,
    ping_session_needs_no_token_and_extends_a_valid_one,
    every_envelope_error_has_its_code_and_message,
    oversized_bodies_get_an_envelope_not_a_dropped_connection,
    debug_max_echoes_the_request_with_secrets_masked,
    number_format_string_writes_every_number_in_result_as_a_string,
    data_format_arrays_returns_rows_in_the_documented_column_order,
    omit_drops_the_named_top_level_properties,
    session_defaults_apply_where_the_request_says_nothing,
    sessions_are_shared_with_the_rocket_chat_surface,
    a_session_ended_by_delete_session_is_refused_by_rocket_chat,
    a_session_ended_by_logout_me_gets_12031_on_the_next_request,
    a_wrong_type_for_every_known_property_is_named_in_the_error,
    any_body_gets_a_well_formed_envelope,
);

async fn create_session_returns_the_token_and_the_session_with_timestamps(store: Store) {
    let app = spawn_app(store).await;
    app.create_user("alice", false);

    let reply = api(
        &app,
        &json!({
            "requestId": "1",
            "api": "admin",
            "action": "createSession",
            "params": {"username": "alice", "password": USER_PASSWORD, "description": "for troubleshooting"},
        }),
    )
    .await;

    assert_eq!(
        keys(&reply),
        [
            "result",
            "requestId",
            "errorCode",
            "errorMessage",
            "authToken"
        ]
    );
    assert_eq!(error(&reply), (0, ""));
    assert_eq!(reply["requestId"], "1");
    let result = &reply["result"];
    assert_eq!(keys(result), DESCRIPTION_COLUMNS);
    let token = result["authToken"].as_str().unwrap();
    assert_eq!(token.len(), 43);
    assert_eq!(reply["authToken"], token);
    assert_eq!(result["username"], "alice");
    assert_eq!(result["description"], "for troubleshooting");
    assert_eq!(result["idleConnectionTimeoutSeconds"], 3600);
    assert_eq!(result["permanentSession"], false);
    assert_eq!(result["defaultApi"], "admin");
    assert_eq!(result["defaultDebug"], "none");
    assert_eq!(result["defaultResponseOptions"], json!({}));
    assert!(is_iso_millis(&result["sessionStartTimestamp"]), "{result}");
    assert_eq!(
        result["sessionStartTimestamp"],
        result["sessionLastAccessedTimestamp"]
    );
    let expiry = parse_time(&result["sessionExpirationTimestamp"]);
    let start = parse_time(&result["sessionStartTimestamp"]);
    assert_eq!((expiry - start).num_seconds(), 3600, "the idle timeout");
    // An ordinary row: hash only, device from the User-Agent.
    let row = app.query_texts(&format!(
        "SELECT device_name || '|' || os_name || '|' || description || '|' || token_hint AS value \
         FROM sessions WHERE token_hash = '{}'",
        hash(token)
    ));
    assert_eq!(
        row,
        [format!(
            "Chrome|Windows|for troubleshooting|{}",
            &token[..6]
        )]
    );
}

async fn create_session_stores_description_timeouts_and_defaults(store: Store) {
    let app = spawn_app_with(store, |s| s.max_body_bytes = 200_000).await;
    app.create_user("alice", false);
    let longest = "d".repeat(65_500);

    let reply = create_as(
        &app,
        "alice",
        json!({
            "description": longest,
            "idleConnectionTimeoutSeconds": 0,
            "defaultApi": "db",
            "defaultDebug": "MAX",
            "defaultResponseOptions": {"numberFormat": "string", "omit": ["debugInfo"]},
        }),
    )
    .await;

    assert_eq!(error(&reply), (0, ""));
    let result = &reply["result"];
    assert_eq!(result["description"], longest.as_str());
    assert_eq!(result["idleConnectionTimeoutSeconds"], "0");
    assert_eq!(result["defaultApi"], "db");
    assert_eq!(result["defaultDebug"], "max");
    assert_eq!(
        result["defaultResponseOptions"],
        json!({"numberFormat": "string", "omit": ["debugInfo"]})
    );
    // 0: no idle expiry, only the absolute lifetime (30 days by default).
    let lifetime = parse_time(&result["sessionExpirationTimestamp"])
        - parse_time(&result["sessionStartTimestamp"]);
    assert_eq!(lifetime.num_seconds(), 2_592_000);
    let stored = app.query_texts(&format!(
        "SELECT api_defaults AS value FROM sessions WHERE token_hash = '{}'",
        hash(result["authToken"].as_str().unwrap())
    ));
    let stored: Value = serde_json::from_str(&stored[0]).unwrap();
    assert_eq!(
        stored,
        json!({"defaultApi": "db", "defaultDebug": "max",
               "defaultResponseOptions": {"numberFormat": "string", "omit": ["debugInfo"]}})
    );

    let permanent = create_as(&app, "alice", json!({"permanentSession": true})).await;
    assert_eq!(permanent["result"]["permanentSession"], true);
    assert_eq!(
        permanent["result"]["sessionExpirationTimestamp"],
        Value::Null
    );
    let expires = app.query_texts(&format!(
        "SELECT CAST(expires_at AS TEXT) AS value FROM sessions WHERE token_hash = '{}'",
        hash(permanent["result"]["authToken"].as_str().unwrap())
    ));
    assert!(expires[0].starts_with("9999-12-31"), "{expires:?}");
}

async fn create_session_checks_its_params(store: Store) {
    let app = spawn_app_with(store, |s| s.max_body_bytes = 200_000).await;
    app.create_user("alice", false);
    let timeout = "'idleConnectionTimeoutSeconds' must be 0 (no idle timeout) or an integer from 60 to 2592000";
    let cases = [
        (json!({"description": "d".repeat(65_501)}), "'description' must be a string of 0 to 65500 bytes; got a string of 65501 bytes.".to_owned()),
        (json!({"idleConnectionTimeoutSeconds": -1}), format!("{timeout}; got a number.")),
        (json!({"idleConnectionTimeoutSeconds": 59}), format!("{timeout}; got a number.")),
        (json!({"idleConnectionTimeoutSeconds": 2_592_001}), format!("{timeout}; got a number.")),
        (json!({"idleConnectionTimeoutSeconds": 60.5}), format!("{timeout}; got a number.")),
        (json!({"idleConnectionTimeoutSeconds": "3600"}), format!("{timeout}; got a string of 4 bytes.")),
        (json!({"permanentSession": "yes"}), "'permanentSession' must be true or false; got a string of 3 bytes.".to_owned()),
        (json!({"defaultDebug": "verbose"}), "'defaultDebug' must be \"none\", \"min\" or \"max\"; got a string of 7 bytes.".to_owned()),
        (json!({"defaultResponseOptions": {"dataFormat": "rows"}}), "'defaultResponseOptions.dataFormat' must be one of \"objects\", \"arrays\"; got a string of 4 bytes.".to_owned()),
        (json!({"defaultApi": ""}), "'defaultApi' must be a string of 1 to 64 bytes; got a string of 0 bytes.".to_owned()),
        (json!({"userName": "alice"}), "'userName' is not a property of createSession; its properties are username, password, twoFactorCode, description, idleConnectionTimeoutSeconds, permanentSession, defaultApi, defaultDebug, defaultResponseOptions.".to_owned()),
    ];
    for (params, message) in cases {
        let reply = create_as(&app, "alice", params.clone()).await;
        assert_eq!(error(&reply), (34005, message.as_str()), "{params}");
        assert_eq!(reply["result"], json!({}), "{params}");
    }
    let missing = api(
        &app,
        &json!({"action": "createSession", "params": {"password": "x"}}),
    )
    .await;
    assert_eq!(
        error(&missing),
        (34005, "'username' is required: a string of 1 to 64 bytes.")
    );
    let no_params = api(&app, &json!({"action": "createSession"})).await;
    assert_eq!(error(&no_params).0, 34005);
    for seconds in [0, 60, 2_592_000] {
        let reply = create_as(
            &app,
            "alice",
            json!({"idleConnectionTimeoutSeconds": seconds}),
        )
        .await;
        assert_eq!(error(&reply), (0, ""), "{seconds}");
        assert_eq!(reply["result"]["idleConnectionTimeoutSeconds"], seconds);
    }
}

async fn bad_credentials_get_the_same_answer_for_unknown_users(store: Store) {
    let app = spawn_app(store).await;
    app.create_user("alice", false);

    let wrong_password = api(
        &app,
        &json!({"requestId": 9, "action": "createSession", "params": {"username": "alice", "password": "nope"}}),
    )
    .await;
    let unknown_user = api(
        &app,
        &json!({"requestId": 9, "action": "createSession", "params": {"username": "mallory", "password": "nope"}}),
    )
    .await;

    assert_eq!(
        wrong_password,
        json!({"result": {}, "requestId": 9, "errorCode": 34010, "errorMessage": BAD_CREDENTIALS})
    );
    assert_eq!(wrong_password, unknown_user);
    assert_eq!(
        app.query_texts("SELECT session_id AS value FROM sessions"),
        Vec::<String>::new()
    );
}

async fn repeated_bad_credentials_are_throttled(store: Store) {
    let app = spawn_app(store).await;
    app.create_user("alice", false);
    let wrong =
        json!({"action": "createSession", "params": {"username": "alice", "password": "nope"}});
    for _ in 0..5 {
        assert_eq!(error(&api(&app, &wrong).await).0, 34010);
    }

    let throttled = create_as(&app, "alice", json!({})).await;

    let (code, message) = error(&throttled);
    assert_eq!(code, 34011, "{throttled}");
    let seconds: i64 = message
        .strip_prefix("Too many failed attempts. Wait ")
        .and_then(|rest| rest.strip_suffix(" seconds before trying again."))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("unexpected message {message}"));
    assert!((1..=900).contains(&seconds), "{seconds}");
}

async fn a_user_with_totp_must_send_a_code_to_create_a_session(store: Store) {
    let app = spawn_app(store).await;
    app.create_user("alice", false);
    let rc = app.login("alice", USER_PASSWORD).await;
    let (secret, _) = app.enroll_totp(&rc).await;

    let without = create_as(&app, "alice", json!({})).await;
    let wrong = create_as(&app, "alice", json!({"twoFactorCode": "000000"})).await;
    let good = create_as(
        &app,
        "alice",
        json!({"twoFactorCode": current_code(&secret, 1)}),
    )
    .await;

    assert_eq!(
        error(&without),
        (34012, "This account uses two-factor authentication: send a TOTP code or a backup code in 'twoFactorCode'.")
    );
    assert_eq!(
        error(&wrong),
        (34013, "The two-factor code is wrong or was already used.")
    );
    assert_eq!(error(&good), (0, ""), "{good}");
}

async fn action_names_ignore_case_and_api_fields_are_accepted(store: Store) {
    let app = spawn_app(store).await;
    let token = admin_token(&app).await;

    for action in [
        "listSessions",
        "LISTSESSIONS",
        "listsessions",
        "ListSessions",
    ] {
        let reply = api(
            &app,
            &json!({"api": "admin", "apiVersion": "1.0", "action": action, "authToken": token}),
        )
        .await;
        assert_eq!(error(&reply), (0, ""), "{action}");
        assert_eq!(reply["result"]["sessions"].as_array().unwrap().len(), 1);
    }
}

async fn request_ids_are_echoed_exactly_as_given(store: Store) {
    let app = spawn_app(store).await;
    let ids = [
        json!("00000045"),
        json!(7),
        json!(-1.5),
        json!(true),
        json!(null),
        json!({"a": [1, {"b": null}]}),
        json!([1, "two"]),
        json!("x".repeat(1000)),
    ];
    for id in ids {
        let ok = api(&app, &json!({"requestId": id, "action": "pingSession"})).await;
        let failed = api(&app, &json!({"requestId": id, "action": "nope"})).await;
        assert_eq!(ok["requestId"], id);
        assert_eq!(failed["requestId"], id);
        assert_eq!(error(&ok).0, 0);
        assert_eq!(error(&failed).0, 34004);
    }
    let absent = api(&app, &json!({"action": "pingSession"})).await;
    assert_eq!(
        absent,
        json!({"result": {}, "requestId": null, "errorCode": 0, "errorMessage": ""})
    );
}

async fn list_sessions_shows_the_callers_sessions_with_only_its_own_token(store: Store) {
    let app = spawn_app(store).await;
    app.create_user("alice", false);
    app.create_user("bob", false);
    let mine = token_for(&app, "alice").await;
    let other_json = token_for(&app, "alice").await;
    let other_rc = app.login("alice", USER_PASSWORD).await.token;
    let bobs = token_for(&app, "bob").await;

    let reply = api(
        &app,
        &json!({"requestId": "2", "action": "listSessions", "authToken": mine}),
    )
    .await;

    assert_eq!(
        keys(&reply),
        [
            "result",
            "requestId",
            "errorCode",
            "errorMessage",
            "authToken"
        ]
    );
    assert_eq!(reply["authToken"], mine.as_str());
    let hint = |t: &str| format!("{}…", &t[..6]);
    // Newest first.
    assert_eq!(
        reply["result"],
        json!({"sessions": [
            {"username": "alice", "description": "", "authToken": hint(&other_rc)},
            {"username": "alice", "description": "", "authToken": hint(&other_json)},
            {"username": "alice", "description": "", "authToken": mine},
        ]})
    );
    let text = reply.to_string();
    for secret in [&other_json, &other_rc, &bobs] {
        assert!(
            !text.contains(secret.as_str()),
            "a full token leaked: {text}"
        );
    }
}

async fn admins_list_everyones_sessions_without_seeing_their_tokens(store: Store) {
    let app = spawn_app(store).await;
    app.create_user("alice", false);
    app.create_user("bob", false);
    let alice = token_for(&app, "alice").await;
    let bob = app.login("bob", USER_PASSWORD).await.token;
    let admin = admin_token(&app).await;

    let reply = api(&app, &json!({"action": "listSessions", "authToken": admin})).await;

    assert_eq!(error(&reply), (0, ""));
    let sessions = reply["result"]["sessions"].as_array().unwrap();
    let shown: Vec<(&str, &str)> = sessions
        .iter()
        .map(|s| {
            (
                s["username"].as_str().unwrap(),
                s["authToken"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        shown,
        [
            ("admin", admin.as_str()),
            ("bob", format!("{}…", &bob[..6]).as_str()),
            ("alice", format!("{}…", &alice[..6]).as_str()),
        ]
    );
    let text = reply.to_string();
    assert!(!text.contains(&alice) && !text.contains(&bob), "{text}");
}

async fn username_filter_narrows_the_list_and_checks_its_entries(store: Store) {
    let app = spawn_app(store).await;
    app.create_user("alice", false);
    app.create_user("bob", false);
    token_for(&app, "alice").await;
    token_for(&app, "bob").await;
    let admin = admin_token(&app).await;
    let alice = token_for(&app, "alice").await;
    let list = |token: &str, filter: Value| json!({"action": "listSessions", "authToken": token, "params": {"usernameFilter": filter}});
    let names = |reply: &Value| -> Vec<String> {
        reply["result"]["sessions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["username"].as_str().unwrap().to_owned())
            .collect()
    };

    let alices = api(&app, &list(&admin, json!(["ALICE"]))).await;
    let both = api(&app, &list(&admin, json!(["alice", "bob"]))).await;
    let empty = api(&app, &list(&admin, json!([]))).await;
    let not_own = api(&app, &list(&alice, json!(["bob"]))).await;

    assert_eq!(names(&alices), ["alice", "alice"]);
    assert_eq!(names(&both), ["alice", "bob", "alice"]);
    assert_eq!(names(&empty).len(), 4, "an empty filter is no filter");
    assert_eq!(
        names(&not_own),
        Vec::<String>::new(),
        "a user sees only its own"
    );
    let each = "a string of 1 to 64 bytes";
    let whole = "'usernameFilter' must be an array of at most 100 strings of 1 to 64 bytes each";
    let cases = [
        (
            json!([""]),
            format!("'usernameFilter[0]' must be {each}; got a string of 0 bytes."),
        ),
        (
            json!(["ok", "a".repeat(65)]),
            format!("'usernameFilter[1]' must be {each}; got a string of 65 bytes."),
        ),
        (
            json!([5]),
            format!("'usernameFilter[0]' must be {each}; got a number."),
        ),
        (json!("alice"), format!("{whole}; got a string of 5 bytes.")),
        (
            json!(vec!["a"; 101]),
            format!("{whole}; got an array of 101 entries."),
        ),
    ];
    for (filter, message) in cases {
        let reply = api(&app, &list(&admin, filter.clone())).await;
        assert_eq!(error(&reply), (34005, message.as_str()), "{filter}");
    }
}

async fn describe_sessions_without_tokens_describes_the_callers_sessions(store: Store) {
    let app = spawn_app(store).await;
    app.create_user("alice", false);
    let older = token_for(&app, "alice").await;
    let mine = token_for(&app, "alice").await;
    admin_token(&app).await;

    let reply = api(
        &app,
        &json!({"action": "describeSessions", "authToken": mine}),
    )
    .await;

    assert_eq!(error(&reply), (0, ""));
    let sessions = reply["result"]["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 2);
    for session in sessions {
        assert_eq!(keys(session), DESCRIPTION_COLUMNS);
        assert_eq!(session["username"], "alice");
    }
    assert_eq!(sessions[0]["authToken"], mine.as_str());
    assert_eq!(sessions[1]["authToken"], format!("{}…", &older[..6]));
    assert!(!reply.to_string().contains(&older));
}

async fn describe_sessions_by_token_needs_admin_for_other_accounts(store: Store) {
    let app = spawn_app(store).await;
    app.create_user("alice", false);
    app.create_user("bob", false);
    let alice = token_for(&app, "alice").await;
    let alice_other = token_for(&app, "alice").await;
    let bob = token_for(&app, "bob").await;
    let admin = admin_token(&app).await;
    let describe = |caller: &str, tokens: Value| json!({"action": "describeSessions", "authToken": caller, "params": {"authTokens": tokens}});

    let own = api(&app, &describe(&alice, json!([alice_other]))).await;
    let others = api(&app, &describe(&alice, json!([alice_other, bob]))).await;
    let as_admin = api(
        &app,
        &describe(&admin, json!([bob, "not-a-session", alice])),
    )
    .await;

    assert_eq!(error(&own), (0, ""));
    assert_eq!(
        own["result"]["sessions"][0]["authToken"],
        alice_other.as_str()
    );
    assert_eq!(
        others,
        json!({"result": {}, "requestId": null, "errorCode": 34020,
               "errorMessage": "Not permitted: only an administrator may describe another account's sessions.",
               "authToken": alice})
    );
    assert_eq!(error(&as_admin), (0, ""));
    let described: Vec<&str> = as_admin["result"]["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["username"].as_str().unwrap())
        .collect();
    assert_eq!(described, ["bob", "alice"]);
    assert_eq!(
        as_admin["debugInfo"],
        json!({"warnings": [{"code": 12031, "message": NO_SESSION, "property": "authTokens[1]"}]})
    );
}

async fn alter_session_changes_description_timeout_and_defaults(store: Store) {
    let app = spawn_app(store).await;
    app.create_user("alice", false);
    let token = token_for(&app, "alice").await;

    let reply = api(
        &app,
        &json!({"action": "alterSession", "authToken": token, "params": {
            "description": "renamed",
            "idleConnectionTimeoutSeconds": 120,
            "defaultDebug": "min",
            "defaultResponseOptions": {"dataFormat": "arrays"},
        }}),
    )
    .await;

    assert_eq!(error(&reply), (0, ""), "{reply}");
    let result = &reply["result"];
    assert_eq!(keys(result), DESCRIPTION_COLUMNS);
    assert_eq!(result["authToken"], token.as_str());
    assert_eq!(result["description"], "renamed");
    assert_eq!(result["idleConnectionTimeoutSeconds"], 120);
    assert_eq!(result["defaultApi"], "admin", "untouched defaults stay");
    assert_eq!(result["defaultDebug"], "min");
    assert_eq!(
        result["defaultResponseOptions"],
        json!({"dataFormat": "arrays"})
    );
    let idle = parse_time(&result["sessionExpirationTimestamp"])
        - parse_time(&result["sessionLastAccessedTimestamp"]);
    assert_eq!(
        idle.num_seconds(),
        120,
        "the expiry follows the new timeout"
    );
    let stored = app.query_texts(&format!(
        "SELECT description || '|' || CAST(idle_timeout_seconds AS TEXT) AS value FROM sessions WHERE token_hash = '{}'",
        hash(&token)
    ));
    assert_eq!(stored, ["renamed|120"]);
    // The new default data format now shapes lists.
    let listed = api(&app, &json!({"action": "listSessions", "authToken": token})).await;
    assert_eq!(
        listed["result"]["sessions"],
        json!([["alice", "renamed", token]])
    );
}

async fn alter_session_cannot_change_the_username_or_make_a_session_permanent(store: Store) {
    let app = spawn_app(store).await;
    app.create_user("alice", false);
    let token = token_for(&app, "alice").await;
    let alter =
        |params: Value| json!({"action": "alterSession", "authToken": token, "params": params});

    let rename = api(&app, &alter(json!({"username": "admin"}))).await;
    let permanent = api(&app, &alter(json!({"permanentSession": true}))).await;
    let password = api(&app, &alter(json!({"password": "x"}))).await;

    assert_eq!(
        error(&rename),
        (
            34005,
            "'username' cannot be changed: a session belongs to the account that created it."
        )
    );
    assert_eq!(
        error(&permanent),
        (34005, "'permanentSession' cannot be set to true by alterSession: only createSession makes a permanent session.")
    );
    assert_eq!(
        error(&password),
        (34005, "'password' is not a property of alterSession; its properties are description, idleConnectionTimeoutSeconds, permanentSession, defaultApi, defaultDebug, defaultResponseOptions.")
    );
    let stored = app.query_texts(&format!(
        "SELECT CASE WHEN permanent THEN 'permanent' ELSE 'ordinary' END AS value FROM sessions WHERE token_hash = '{}'",
        hash(&token)
    ));
    assert_eq!(stored, ["ordinary"]);

    // A permanent session may stop being permanent.
    let forever = create_as(&app, "alice", json!({"permanentSession": true})).await;
    let forever = forever["result"]["authToken"].as_str().unwrap();
    let ended = api(
        &app,
        &json!({"action": "alterSession", "authToken": forever, "params": {"permanentSession": false}}),
    )
    .await;
    assert_eq!(error(&ended), (0, ""));
    assert_eq!(ended["result"]["permanentSession"], false);
    assert!(is_iso_millis(
        &ended["result"]["sessionExpirationTimestamp"]
    ));
}

async fn delete_session_ends_the_session_and_unknown_tokens_only_warn(store: Store) {
    let app = spawn_app(store).await;
    app.create_user("alice", false);
    let token = token_for(&app, "alice").await;
    let delete = json!({"requestId": 3, "action": "deleteSession", "authToken": token});

    let first = api(&app, &delete).await;
    let after = api(&app, &json!({"action": "listSessions", "authToken": token})).await;
    let again = api(&app, &delete).await;
    let garbage = api(
        &app,
        &json!({"action": "deleteSession", "authToken": "not a token"}),
    )
    .await;

    assert_eq!(
        first,
        json!({"result": {}, "requestId": 3, "errorCode": 0, "errorMessage": "", "authToken": token})
    );
    assert_eq!(error(&after), (12031, NO_SESSION));
    let warned = json!({"result": {}, "requestId": 3, "errorCode": 0, "errorMessage": "", "authToken": token,
        "debugInfo": {"warnings": [{"code": 12031, "message": NO_SESSION, "property": "authToken"}]}});
    assert_eq!(again, warned);
    assert_eq!(error(&garbage), (0, ""));
    assert_eq!(garbage["debugInfo"]["warnings"][0]["code"], 12031);
    let ended_by = app.query_texts(&format!(
        "SELECT logout_by AS value FROM sessions WHERE token_hash = '{}' AND logout_at IS NOT NULL",
        hash(&token)
    ));
    assert_eq!(ended_by, ["user"]);
}

async fn ping_session_needs_no_token_and_extends_a_valid_one(store: Store) {
    let app = spawn_app(store).await;
    app.create_user("alice", false);
    let token = token_for(&app, "alice").await;
    // Pretend the session was last used half an hour ago.
    let earlier = sessiond::domain::clock::plus_seconds(sessiond::domain::clock::now(), -1800);
    {
        let mut conn = app.pool.get().unwrap();
        diesel::update(sessions::table.filter(sessions::token_hash.eq(hash(&token))))
            .set((
                sessions::last_activity_at.eq(earlier),
                sessions::expires_at.eq(sessiond::domain::clock::plus_seconds(earlier, 3600)),
            ))
            .execute(&mut *conn)
            .unwrap();
    }

    let anonymous = api(&app, &json!({"action": "pingSession"})).await;
    let ping = api(&app, &json!({"action": "pingSession", "authToken": token})).await;
    let unknown = api(
        &app,
        &json!({"action": "pingSession", "authToken": "a".repeat(43)}),
    )
    .await;

    assert_eq!(
        anonymous,
        json!({"result": {}, "requestId": null, "errorCode": 0, "errorMessage": ""})
    );
    assert_eq!(error(&ping), (0, ""));
    assert_eq!(error(&unknown), (12031, NO_SESSION));
    let described = api(
        &app,
        &json!({"action": "describeSessions", "authToken": token}),
    )
    .await;
    let session = &described["result"]["sessions"][0];
    let accessed = parse_time(&session["sessionLastAccessedTimestamp"]);
    assert!(
        (sessiond::domain::clock::now() - accessed).num_seconds() < 60,
        "the ping recorded activity: {session}"
    );
    let idle = parse_time(&session["sessionExpirationTimestamp"]) - accessed;
    assert_eq!(idle.num_seconds(), 3600, "the expiry moved forward");
}

async fn every_envelope_error_has_its_code_and_message(store: Store) {
    let app = spawn_app(store).await;
    app.create_user("alice", false);
    let token = token_for(&app, "alice").await;
    let properties =
        "requestId, api, action, params, apiVersion, debug, authToken, responseOptions";
    let raw_cases: Vec<(&[u8], i64, String)> = vec![
        (
            b"{",
            34001,
            "The request body is not valid JSON: EOF while parsing an object at line 1 column 1."
                .into(),
        ),
        (
            b"",
            34001,
            "The request body is not valid JSON: EOF while parsing a value at line 1 column 0."
                .into(),
        ),
        (
            b"action=listSessions",
            34001,
            "The request body is not valid JSON: expected value at line 1 column 1.".into(),
        ),
        (
            b"[1]",
            34002,
            "The request body must be a JSON object; got an array.".into(),
        ),
        (
            b"\"listSessions\"",
            34002,
            "The request body must be a JSON object; got a string.".into(),
        ),
        (
            b"null",
            34002,
            "The request body must be a JSON object; got null.".into(),
        ),
        (
            b"{}",
            34003,
            format!("The request has no 'action'; set it to {ACTIONS}."),
        ),
    ];
    for (raw, code, message) in raw_cases {
        let (status, reply) = api_raw(&app, raw.to_vec()).await;
        assert_eq!(status, 200);
        assert_eq!(
            reply,
            json!({"result": {}, "requestId": null, "errorCode": code, "errorMessage": message}),
            "{}",
            String::from_utf8_lossy(raw)
        );
    }
    let cases = [
        (json!({"action": null}), 34003, format!("The request has no 'action'; set it to {ACTIONS}.")),
        (json!({"action": "dance"}), 34004, format!("'dance' is not an action of this service; use {ACTIONS}.")),
        (json!({"action": "x".repeat(100)}), 34004, format!("'{}…' is not an action of this service; use {ACTIONS}.", "x".repeat(64))),
        (json!({"action": 5}), 34005, "'action' must be a string naming an action; got a number.".into()),
        (json!({"action": "pingSession", "actoin": 1}), 34005, format!("'actoin' is not a property of a request; the properties are {properties}.")),
        (json!({"action": "pingSession", "params": []}), 34005, "'params' must be an object; got an array of 0 entries.".into()),
        (json!({"action": "pingSession", "api": 1}), 34005, "'api' must be a string of 1 to 64 bytes; got a number.".into()),
        (json!({"action": "pingSession", "apiVersion": 1.0}), 34005, "'apiVersion' must be a string of 1 to 64 bytes; got a number.".into()),
        (json!({"action": "pingSession", "debug": "all"}), 34005, "'debug' must be \"none\", \"min\" or \"max\"; got a string of 3 bytes.".into()),
        (json!({"action": "pingSession", "authToken": 42}), 34005, "'authToken' must be a string; got a number.".into()),
        (json!({"action": "pingSession", "responseOptions": {"numberFormat": 1}}), 34005, "'responseOptions.numberFormat' must be one of \"number\", \"string\"; got a number.".into()),
        (json!({"action": "pingSession", "responseOptions": {"pretty": true}}), 34005, "'responseOptions.pretty' is not a response option; the options are binaryFormat, dataFormat, numberFormat and omit.".into()),
        (json!({"action": "pingSession", "params": {"authToken": "x"}}), 34005, "'authToken' is not a property of pingSession, which takes no params.".into()),
        (json!({"action": "listSessions"}), 34005, "'authToken' is required by listSessions; get one from createSession.".into()),
        (json!({"action": "deleteSession"}), 34005, "'authToken' is required by deleteSession; get one from createSession.".into()),
        (json!({"action": "listSessions", "authToken": "replaceWithAuthTokenFromCreateSession"}), 12031, NO_SESSION.into()),
        (json!({"action": "describeSessions", "authToken": ""}), 12031, NO_SESSION.into()),
        (json!({"action": "alterSession", "authToken": "x".repeat(300)}), 12031, NO_SESSION.into()),
        (json!({"action": "createSession", "params": {"username": "alice", "password": "wrong"}}), 34010, BAD_CREDENTIALS.into()),
        (json!({"action": "listSessions", "authToken": token, "params": {"usernameFilter": 1}}), 34005, "'usernameFilter' must be an array of at most 100 strings of 1 to 64 bytes each; got a number.".into()),
    ];
    for (request, code, message) in cases {
        let reply = api(&app, &request).await;
        assert_eq!(error(&reply), (code, message.as_str()), "{request}");
        assert_eq!(reply["result"], json!({}), "{request}");
    }
    // A dead token is reported before a bad param.
    let both = api(
        &app,
        &json!({"action": "listSessions", "authToken": "gone", "params": {"usernameFilter": 1}}),
    )
    .await;
    assert_eq!(error(&both), (12031, NO_SESSION));
}

async fn oversized_bodies_get_an_envelope_not_a_dropped_connection(store: Store) {
    let app = spawn_app_with(store, |s| s.max_body_bytes = 1024).await;
    let message = "The request body is larger than the limit of 1024 bytes.";

    for size in [1025, 64 * 1024, 4 * 1024 * 1024] {
        let request = json!({"requestId": 1, "action": "pingSession", "api": "x".repeat(size)});
        let (status, reply) = api_raw(&app, serde_json::to_vec(&request).unwrap()).await;
        assert_eq!(status, 200, "{size}");
        assert_eq!(
            reply,
            json!({"result": {}, "requestId": null, "errorCode": 34006, "errorMessage": message}),
            "{size}"
        );
    }
    // The connection is still good for the next request.
    let fine = api(&app, &json!({"action": "pingSession"})).await;
    assert_eq!(error(&fine), (0, ""));
}

async fn debug_max_echoes_the_request_with_secrets_masked(store: Store) {
    let app = spawn_app(store).await;
    app.create_user("alice", false);

    let created = api(
        &app,
        &json!({"action": "createSession", "debug": "max",
                "params": {"username": "alice", "password": USER_PASSWORD}}),
    )
    .await;
    let token = created["result"]["authToken"].as_str().unwrap().to_owned();
    let described = api(
        &app,
        &json!({"requestId": "2", "api": "admin", "action": "describeSessions", "debug": "max",
                "authToken": token, "params": {"authTokens": [token]}}),
    )
    .await;
    let failed = api(
        &app,
        &json!({"requestId": "2", "api": "admin", "action": "listSessions", "debug": "max",
                "authToken": "invalidAuthtoken"}),
    )
    .await;
    let quiet = api(&app, &json!({"action": "listSessions", "authToken": token})).await;

    assert_eq!(
        created["debugInfo"],
        json!({"request": {"action": "createSession", "debug": "max",
                           "params": {"username": "alice", "password": "********"}}})
    );
    assert!(!created.to_string().contains(USER_PASSWORD));
    assert_eq!(
        described["debugInfo"],
        json!({"request": {"requestId": "2", "api": "admin", "action": "describeSessions", "debug": "max",
                           "authToken": "********", "params": {"authTokens": ["********"]}}})
    );
    // The seed's failure example, with the token masked in the echo.
    assert_eq!(
        failed,
        json!({"result": {}, "requestId": "2", "errorCode": 12031, "errorMessage": NO_SESSION,
               "authToken": "invalidAuthtoken",
               "debugInfo": {"request": {"requestId": "2", "api": "admin", "action": "listSessions",
                                         "debug": "max", "authToken": "********"}}})
    );
    assert_eq!(quiet.get("debugInfo"), None);
}

async fn number_format_string_writes_every_number_in_result_as_a_string(store: Store) {
    let app = spawn_app(store).await;
    app.create_user("alice", false);

    let strings = api(
        &app,
        &json!({"action": "createSession", "responseOptions": {"numberFormat": "string"},
                "params": {"username": "alice", "password": USER_PASSWORD, "idleConnectionTimeoutSeconds": 600}}),
    )
    .await;
    let token = strings["result"]["authToken"].as_str().unwrap();
    let numbers = api(
        &app,
        &json!({"action": "describeSessions", "authToken": token, "responseOptions": {"numberFormat": "number"}}),
    )
    .await;

    assert_eq!(strings["result"]["idleConnectionTimeoutSeconds"], "600");
    assert_eq!(strings["errorCode"], 0, "only result is affected");
    assert_eq!(
        numbers["result"]["sessions"][0]["idleConnectionTimeoutSeconds"],
        600
    );
}

async fn data_format_arrays_returns_rows_in_the_documented_column_order(store: Store) {
    let app = spawn_app(store).await;
    app.create_user("alice", false);
    let token = token_for(&app, "alice").await;
    let arrays = json!({"dataFormat": "arrays"});

    let listed = api(
        &app,
        &json!({"action": "listSessions", "authToken": token, "responseOptions": arrays}),
    )
    .await;
    let described = api(
        &app,
        &json!({"action": "describeSessions", "authToken": token, "responseOptions": arrays}),
    )
    .await;
    let objects = api(
        &app,
        &json!({"action": "describeSessions", "authToken": token}),
    )
    .await;

    assert_eq!(
        listed["result"],
        json!({"sessions": [["alice", "", token]]})
    );
    let object = &objects["result"]["sessions"][0];
    let expected: Vec<Value> = DESCRIPTION_COLUMNS
        .iter()
        .map(|c| object[*c].clone())
        .collect();
    assert_eq!(described["result"]["sessions"][0], Value::Array(expected));
}

async fn omit_drops_the_named_top_level_properties(store: Store) {
    let app = spawn_app(store).await;
    let token = admin_token(&app).await;

    let trimmed = api(
        &app,
        &json!({"requestId": 1, "action": "listSessions", "authToken": token, "debug": "max",
                "responseOptions": {"omit": ["result", "authToken", "debugInfo"]}}),
    )
    .await;
    let partly = api(
        &app,
        &json!({"action": "listSessions", "authToken": token, "responseOptions": {"omit": ["authToken"]}}),
    )
    .await;
    let refused = api(
        &app,
        &json!({"action": "listSessions", "authToken": token, "responseOptions": {"omit": ["errorCode"]}}),
    )
    .await;

    assert_eq!(
        trimmed,
        json!({"requestId": 1, "errorCode": 0, "errorMessage": ""})
    );
    assert_eq!(
        keys(&partly),
        ["result", "requestId", "errorCode", "errorMessage"]
    );
    assert_eq!(
        error(&refused),
        (34005, "'responseOptions.omit[0]' must be one of \"result\", \"authToken\", \"debugInfo\"; got a string of 9 bytes.")
    );
}

async fn session_defaults_apply_where_the_request_says_nothing(store: Store) {
    let app = spawn_app(store).await;
    app.create_user("alice", false);
    let created = create_as(
        &app,
        "alice",
        json!({"defaultDebug": "max", "defaultResponseOptions": {"dataFormat": "arrays", "numberFormat": "string"}}),
    )
    .await;
    let token = created["result"]["authToken"].as_str().unwrap();

    let defaulted = api(
        &app,
        &json!({"action": "describeSessions", "authToken": token}),
    )
    .await;
    let overridden = api(
        &app,
        &json!({"action": "describeSessions", "authToken": token, "debug": "none",
                "responseOptions": {"dataFormat": "objects"}}),
    )
    .await;

    let row = &defaulted["result"]["sessions"][0];
    assert!(row.is_array(), "{defaulted}");
    assert_eq!(row[3], "3600", "numbers as strings by default");
    assert_eq!(defaulted["debugInfo"]["request"]["authToken"], "********");
    let row = &overridden["result"]["sessions"][0];
    assert!(row.is_object(), "{overridden}");
    assert_eq!(
        row["idleConnectionTimeoutSeconds"], "3600",
        "the other default still holds"
    );
    assert_eq!(overridden.get("debugInfo"), None);
}

async fn sessions_are_shared_with_the_rocket_chat_surface(store: Store) {
    let app = spawn_app(store).await;
    app.create_user("alice", false);
    let rc = app.login("alice", USER_PASSWORD).await;
    let token = token_for(&app, "alice").await;

    let (status, page) = body(app.get_as("/api/v1/sessions/list", &rc).await).await;
    let listed = api(&app, &json!({"action": "listSessions", "authToken": token})).await;
    let me_with_json_token = app
        .get_as(
            "/api/v1/me",
            &crate::helpers::Session {
                user_id: rc.user_id.clone(),
                token: token.clone(),
            },
        )
        .await;

    assert_eq!(status, 200);
    assert_eq!(page["total"], 2, "{page}");
    assert_eq!(page["sessions"][0]["device"]["name"], "Chrome");
    assert_eq!(page["sessions"][0]["current"], false);
    assert_eq!(
        listed["result"]["sessions"][1]["authToken"],
        format!("{}…", &rc.token[..6])
    );
    assert_eq!(me_with_json_token.status(), 200);
}

async fn a_session_ended_by_delete_session_is_refused_by_rocket_chat(store: Store) {
    let app = spawn_app(store).await;
    app.create_user("alice", false);
    let rc = app.login("alice", USER_PASSWORD).await;
    assert_eq!(app.get_as("/api/v1/me", &rc).await.status(), 200);

    let deleted = api(
        &app,
        &json!({"action": "deleteSession", "authToken": rc.token}),
    )
    .await;

    assert_eq!(error(&deleted), (0, ""));
    assert_eq!(deleted.get("debugInfo"), None, "no warning: it was ended");
    let (status, refused) = body(app.get_as("/api/v1/me", &rc).await).await;
    assert_eq!(status, 401);
    assert_eq!(
        refused,
        json!({"status": "error", "message": "You must be logged in to do this."})
    );
}

async fn a_session_ended_by_logout_me_gets_12031_on_the_next_request(store: Store) {
    let app = spawn_app(store).await;
    app.create_user("alice", false);
    let token = token_for(&app, "alice").await;
    let rc = app.login("alice", USER_PASSWORD).await;
    let (_, page) = body(app.get_as("/api/v1/sessions/list", &rc).await).await;
    let session_id = page["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["current"] == false)
        .map(|s| s["sessionId"].clone())
        .unwrap();
    let before = api(&app, &json!({"action": "listSessions", "authToken": token})).await;
    assert_eq!(error(&before), (0, ""));

    let response = app
        .post_as(
            "/api/v1/sessions/logout.me",
            &rc,
            &json!({"sessionId": session_id}),
        )
        .await;
    assert_eq!(response.status(), 200);

    let after = api(&app, &json!({"action": "listSessions", "authToken": token})).await;
    assert_eq!(error(&after), (12031, NO_SESSION));
    let ping = api(&app, &json!({"action": "pingSession", "authToken": token})).await;
    assert_eq!(error(&ping), (12031, NO_SESSION));
}

/// Values of every JSON type but one, for wrong-type cases.
fn wrong_values(right: &Value) -> Vec<Value> {
    let all = [
        json!(null),
        json!(true),
        json!(17),
        json!(-2.5),
        json!("text"),
        json!([1, "a"]),
        json!({"k": "v"}),
    ];
    all.into_iter()
        .filter(|v| {
            !v.is_null()
                && std::mem::discriminant(v) != std::mem::discriminant(right)
                && !(v.is_number() && right.is_number())
        })
        .collect()
}

async fn a_wrong_type_for_every_known_property_is_named_in_the_error(store: Store) {
    let app = spawn_app(store).await;
    app.create_user("alice", false);
    let token = token_for(&app, "alice").await;
    // (action, property, a right value)
    let properties: Vec<(&str, &str, Value)> = vec![
        ("createSession", "username", json!("alice")),
        ("createSession", "password", json!("pw")),
        ("createSession", "twoFactorCode", json!("123456")),
        ("createSession", "description", json!("d")),
        ("createSession", "idleConnectionTimeoutSeconds", json!(60)),
        ("createSession", "permanentSession", json!(false)),
        ("createSession", "defaultApi", json!("db")),
        ("createSession", "defaultDebug", json!("max")),
        ("createSession", "defaultResponseOptions", json!({})),
        ("listSessions", "usernameFilter", json!([])),
        ("describeSessions", "authTokens", json!([])),
        ("alterSession", "description", json!("d")),
        ("alterSession", "idleConnectionTimeoutSeconds", json!(60)),
        ("alterSession", "permanentSession", json!(false)),
        ("alterSession", "defaultApi", json!("db")),
        ("alterSession", "defaultDebug", json!("max")),
        ("alterSession", "defaultResponseOptions", json!({})),
    ];
    let mut checked = 0;
    for (action, property, right) in properties {
        for wrong in wrong_values(&right) {
            let mut params = json!({"username": "alice", "password": USER_PASSWORD});
            if action != "createSession" {
                params = json!({});
            }
            params[property] = wrong.clone();
            let request = json!({"action": action, "authToken": token, "params": params});
            let reply = api(&app, &request).await;
            let (code, message) = error(&reply);
            assert_eq!(code, 34005, "{request}: {reply}");
            assert!(
                message.starts_with(&format!("'{property}")),
                "{request}: the message names the property: {message}"
            );
            assert!(message.contains(" must be "), "{message}");
            checked += 1;
        }
    }
    let envelope: Vec<(&str, Value)> = vec![
        ("api", json!("admin")),
        ("apiVersion", json!("1.0")),
        ("params", json!({})),
        ("debug", json!("max")),
        ("authToken", json!("t")),
        ("responseOptions", json!({})),
    ];
    for (property, right) in envelope {
        for wrong in wrong_values(&right) {
            let mut request = json!({"action": "pingSession"});
            request[property] = wrong;
            let reply = api(&app, &request).await;
            let (code, message) = error(&reply);
            assert_eq!(code, 34005, "{request}: {reply}");
            assert!(
                message.starts_with(&format!("'{property}' must be ")),
                "{message}"
            );
            checked += 1;
        }
    }
    assert!(checked > 100, "{checked} cases");
}

/// A random JSON value, `depth` levels deep at most.
fn random_value(rng: &mut StdRng, depth: u32) -> Value {
    let pick = if depth == 0 {
        rng.gen_range(0..5)
    } else {
        rng.gen_range(0..7)
    };
    match pick {
        0 => Value::Null,
        1 => json!(rng.gen::<bool>()),
        2 => match rng.gen_range(0..3) {
            0 => json!(rng.gen::<i64>()),
            1 => json!(rng.gen::<f64>() * 1e6),
            _ => json!(rng.gen::<u64>()),
        },
        3 => json!(random_string(rng)),
        4 => json!(
            [
                "listSessions",
                "createSession",
                "pingSession",
                "max",
                "arrays",
                "string"
            ][rng.gen_range(0..6)]
        ),
        5 => Value::Array(
            (0..rng.gen_range(0..5))
                .map(|_| random_value(rng, depth - 1))
                .collect(),
        ),
        _ => Value::Object(random_object(rng, depth - 1)),
    }
}

fn random_string(rng: &mut StdRng) -> String {
    let len = match rng.gen_range(0..10) {
        0 => rng.gen_range(1_000..70_000),
        _ => rng.gen_range(0..20),
    };
    (0..len)
        .map(|_| match rng.gen_range(0..4) {
            0 => char::from_u32(rng.gen_range(0..0x30000)).unwrap_or('é'),
            _ => char::from(rng.gen_range(b' '..=b'~')),
        })
        .collect()
}

const KNOWN_KEYS: [&str; 20] = [
    "requestId",
    "api",
    "action",
    "params",
    "apiVersion",
    "debug",
    "authToken",
    "responseOptions",
    "username",
    "password",
    "description",
    "idleConnectionTimeoutSeconds",
    "permanentSession",
    "defaultApi",
    "defaultDebug",
    "defaultResponseOptions",
    "usernameFilter",
    "authTokens",
    "numberFormat",
    "omit",
];

fn random_object(rng: &mut StdRng, depth: u32) -> Map<String, Value> {
    (0..rng.gen_range(0..6))
        .map(|_| {
            let key = if rng.gen_bool(0.8) {
                KNOWN_KEYS[rng.gen_range(0..KNOWN_KEYS.len())].to_owned()
            } else {
                random_string(rng)
            };
            (key, random_value(rng, depth))
        })
        .collect()
}

fn nested(depth: usize, open: &str, close: &str) -> Vec<u8> {
    format!("{}{}", open.repeat(depth), close.repeat(depth)).into_bytes()
}

fn has_float(value: &Value) -> bool {
    match value {
        Value::Number(n) => n.is_f64(),
        Value::Array(items) => items.iter().any(has_float),
        Value::Object(map) => map.values().any(has_float),
        _ => false,
    }
}

/// Checks the envelope a reply must always have.
fn assert_well_formed(status: u16, reply: &Value, sent: &str) {
    assert_eq!(status, 200, "{sent}: {reply}");
    let object = reply
        .as_object()
        .unwrap_or_else(|| panic!("{sent}: not an object: {reply}"));
    assert!(object.contains_key("requestId"), "{sent}: {reply}");
    let code = object["errorCode"]
        .as_i64()
        .unwrap_or_else(|| panic!("{sent}: {reply}"));
    let message = object["errorMessage"]
        .as_str()
        .unwrap_or_else(|| panic!("{sent}: {reply}"));
    assert_eq!(code == 0, message.is_empty(), "{sent}: {reply}");
    assert!(
        code == 0 || code == 12031 || (34001..=34099).contains(&code),
        "{sent}: {reply}"
    );
    assert!(code != 34099, "{sent}: an internal error: {reply}");
    if let Some(result) = object.get("result") {
        assert!(result.is_object(), "{sent}: {reply}");
    }
    for key in object.keys() {
        assert!(
            [
                "result",
                "requestId",
                "errorCode",
                "errorMessage",
                "authToken",
                "debugInfo"
            ]
            .contains(&key.as_str()),
            "{sent}: unexpected property {key}"
        );
    }
}

async fn any_body_gets_a_well_formed_envelope(store: Store) {
    let app = spawn_app(store).await;
    app.create_user("alice", false);
    let token = token_for(&app, "alice").await;
    let mut rng = StdRng::seed_from_u64(0x5e55_10d0);

    for round in 0..250 {
        let mut value = match round % 5 {
            // Envelopes that look almost right, with random parts.
            0..=2 => {
                let mut body = random_object(&mut rng, 3);
                if rng.gen_bool(0.7) {
                    let actions = [
                        "createSession",
                        "listSessions",
                        "describeSessions",
                        "alterSession",
                        "deleteSession",
                        "pingSession",
                        "LISTsessions",
                        "nope",
                    ];
                    body.insert(
                        "action".into(),
                        json!(actions[rng.gen_range(0..actions.len())]),
                    );
                }
                if rng.gen_bool(0.5) {
                    body.insert("authToken".into(), json!(token));
                }
                Value::Object(body)
            }
            // Anything at all.
            _ => random_value(&mut rng, 4),
        };
        // deleteSession with the good token would end the session the other rounds use.
        if value["action"] == "deleteSession" {
            value["authToken"] = json!("stale");
        }
        let bytes = serde_json::to_vec(&value).unwrap();
        let (status, reply) = api_raw(&app, bytes).await;
        let sent: String = value.to_string().chars().take(300).collect();
        assert_well_formed(status, &reply, &sent);
        if let Some(id) = value.get("requestId") {
            // Floats may not survive a text round trip bit for bit.
            if !has_float(id) && reply["errorCode"] != 34006 {
                assert_eq!(&reply["requestId"], id, "{sent}");
            }
        }
    }

    let mut raw_bodies: Vec<Vec<u8>> = vec![
        nested(200, "[", "]"),
        nested(100, "[", "]"),
        format!(
            "{{\"action\":\"pingSession\",\"params\":{}}}",
            "{\"a\":".repeat(150) + "1" + &"}".repeat(150)
        )
        .into_bytes(),
        b"\xff\xfe\x00garbage".to_vec(),
        b"{\"action\": \"pingSession\"".to_vec(),
        b"{\"action\": \"pingSession\"} trailing".to_vec(),
        b"NaN".to_vec(),
        b"{\"requestId\": 1e999, \"action\": \"pingSession\"}".to_vec(),
        b"{\"action\": \"\\ud800\"}".to_vec(),
        vec![b'{'; 70_000],
    ];
    for _ in 0..20 {
        let len = rng.gen_range(0..2_000);
        raw_bodies.push((0..len).map(|_| rng.gen::<u8>()).collect());
    }
    for raw in raw_bodies {
        let sent = String::from_utf8_lossy(&raw[..raw.len().min(80)]).into_owned();
        let (status, reply) = api_raw(&app, raw).await;
        assert_well_formed(status, &reply, &sent);
        assert_ne!(reply["errorCode"], 0, "{sent}: {reply}");
    }
    // The session the rounds used is still there.
    let after = api(&app, &json!({"action": "listSessions", "authToken": token})).await;
    assert_eq!(error(&after).0, 0);
}
