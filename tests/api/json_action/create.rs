//! `createSession`: the reply, what is stored, its params, and the
//! password and second-factor checks.

use serde_json::{json, Value};

use super::{
    api, create_as, error, hash, is_iso_millis, keys, parse_time, BAD_CREDENTIALS,
    DESCRIPTION_COLUMNS,
};
use crate::helpers::{current_code, spawn_app, spawn_app_with, Store, USER_PASSWORD};
use crate::on_both_stores;

on_both_stores!(
    create_session_returns_the_token_and_the_session_with_timestamps,
    create_session_stores_description_timeouts_and_defaults,
    create_session_checks_its_params,
    bad_credentials_get_the_same_answer_for_unknown_users,
    repeated_bad_credentials_are_throttled,
    a_user_with_totp_must_send_a_code_to_create_a_session,
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
