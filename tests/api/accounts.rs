//! Login, logout, `/me`, throttling, expiry and how credentials are stored.

use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::{body, spawn_app, spawn_app_with, Session, Store, USER_PASSWORD};
use crate::on_both_stores;

const NOT_LOGGED_IN: &str = r#"{"status":"error","message":"You must be logged in to do this."}"#;
const LOGIN_FAILED: &str = r#"{"status":"error","error":"Unauthorized","message":"Unauthorized"}"#;

fn parsed(raw: &str) -> Value {
    serde_json::from_str(raw).unwrap()
}

on_both_stores!(
    the_first_admin_logs_in_with_the_printed_password,
    login_returns_a_token_that_authenticates_me,
    username_lookup_ignores_case,
    wrong_password_and_unknown_user_get_identical_answers,
    repeated_failures_for_one_username_get_429_with_retry_after,
    repeated_failures_from_one_ip_get_429,
    a_token_reused_after_logout_is_refused,
    missing_or_wrong_credentials_get_401,
    an_idle_session_expires,
    an_active_session_still_ends_at_its_absolute_lifetime,
    activity_is_written_at_most_once_per_interval,
    the_raw_token_and_secrets_appear_in_no_column,
    bad_login_bodies_get_clear_400s,
    oversized_bodies_get_413,
    login_records_the_device_ip_and_host,
    login_field_errors_name_the_field,
    a_name_of_64_characters_is_a_name_not_a_field_error,
    resume_answers_the_same_session_again,
);

async fn the_first_admin_logs_in_with_the_printed_password(store: Store) {
    let app = spawn_app(store).await;

    let admin = app.login_admin().await;

    let (status, me) = body(app.get_as("/api/v1/me", &admin).await).await;
    assert_eq!(status, 200);
    assert_eq!(me["username"], "admin");
    assert_eq!(me["roles"], json!(["user", "admin"]));
}

async fn login_returns_a_token_that_authenticates_me(store: Store) {
    let app = spawn_app(store).await;
    app.create_user("alice", false);

    let (status, login) = body(app.login_raw("alice", USER_PASSWORD).await).await;

    assert_eq!(status, 200);
    assert_eq!(login["status"], "success");
    let token = login["data"]["authToken"].as_str().unwrap();
    assert_eq!(token.len(), 43, "32 bytes of URL-safe base64");
    assert_eq!(login["data"]["me"]["username"], "alice");
    assert_eq!(login["data"]["me"]["_id"], login["data"]["userId"]);
    let session = Session {
        user_id: login["data"]["userId"].as_str().unwrap().to_owned(),
        token: token.to_owned(),
    };
    let (status, me) = body(app.get_as("/api/v1/me", &session).await).await;
    assert_eq!(status, 200);
    assert_eq!(me["username"], "alice");
    assert_eq!(me["name"], "alice name");
    assert_eq!(me["roles"], json!(["user"]));
    assert_eq!(me["services"]["totp"]["enabled"], false);
    assert_eq!(me["success"], true);
}

async fn username_lookup_ignores_case(store: Store) {
    let app = spawn_app(store).await;
    app.create_user("Funke.Olasupo", false);

    let session = app.login("funke.olasupo", USER_PASSWORD).await;

    let (_, me) = body(app.get_as("/api/v1/me", &session).await).await;
    assert_eq!(
        me["username"], "Funke.Olasupo",
        "the chosen spelling is kept"
    );
}

async fn wrong_password_and_unknown_user_get_identical_answers(store: Store) {
    let app = spawn_app(store).await;
    app.create_user("alice", false);

    let wrong_password = app.login_raw("alice", "not the password").await;
    let unknown_user = app.login_raw("nobody", "not the password").await;

    let headers = |r: &reqwest::Response| {
        let mut names: Vec<String> = r
            .headers()
            .keys()
            .map(|k| k.to_string())
            .filter(|k| k != "date" && k != "x-request-id")
            .collect();
        names.sort();
        names
    };
    assert_eq!(headers(&wrong_password), headers(&unknown_user));
    let (status_a, body_a) = (
        wrong_password.status(),
        wrong_password.text().await.unwrap(),
    );
    let (status_b, body_b) = (unknown_user.status(), unknown_user.text().await.unwrap());
    assert_eq!((status_a.as_u16(), status_b.as_u16()), (401, 401));
    assert_eq!(parsed(&body_a), parsed(LOGIN_FAILED));
    assert_eq!(body_a, body_b, "byte for byte");
}

async fn repeated_failures_for_one_username_get_429_with_retry_after(store: Store) {
    let app = spawn_app_with(store, |s| {
        s.login_max_failures_per_user = 3;
        s.login_failure_window_seconds = 600;
    })
    .await;
    app.create_user("alice", false);

    for attempt in 1..=3 {
        let response = app.login_raw("alice", "wrong").await;
        assert_eq!(response.status(), 401, "attempt {attempt}");
    }
    let throttled = app.login_raw("alice", USER_PASSWORD).await;

    assert_eq!(throttled.status(), 429, "even the right password waits");
    let retry_after: i64 = throttled.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (1..=600).contains(&retry_after),
        "Retry-After {retry_after}"
    );
    let (_, throttled_body) = body(throttled).await;
    assert_eq!(throttled_body["error"], "error-too-many-requests");

    // An unknown username is throttled the same way.
    for _ in 1..=3 {
        app.login_raw("ghost", "wrong").await;
    }
    assert_eq!(app.login_raw("ghost", "wrong").await.status(), 429);
}

async fn repeated_failures_from_one_ip_get_429(store: Store) {
    let app = spawn_app_with(store, |s| {
        s.login_max_failures_per_user = 100;
        s.login_max_failures_per_ip = 4;
    })
    .await;
    app.create_user("alice", false);

    for n in 0..4 {
        assert_eq!(
            app.login_raw(&format!("user{n}"), "wrong").await.status(),
            401
        );
    }

    assert_eq!(app.login_raw("alice", USER_PASSWORD).await.status(), 429);
}

async fn a_token_reused_after_logout_is_refused(store: Store) {
    let app = spawn_app(store).await;
    app.create_user("alice", false);
    let session = app.login("alice", USER_PASSWORD).await;

    let (status, logout) = body(app.post_as("/api/v1/logout", &session, &json!({})).await).await;
    assert_eq!(status, 200);
    assert_eq!(
        logout,
        json!({"status": "success", "data": {"message": "You've been logged out!"}})
    );

    let (status, me) = body(app.get_as("/api/v1/me", &session).await).await;
    assert_eq!(status, 401);
    assert_eq!(me, parsed(NOT_LOGGED_IN));
    let (status, _) = body(app.post_as("/api/v1/logout", &session, &json!({})).await).await;
    assert_eq!(status, 401, "logging out twice needs a session too");
}

async fn missing_or_wrong_credentials_get_401(store: Store) {
    let app = spawn_app(store).await;
    app.create_user("alice", false);
    app.create_user("bob", false);
    let alice = app.login("alice", USER_PASSWORD).await;
    let bob = app.login("bob", USER_PASSWORD).await;

    let cases: Vec<(&str, Vec<(&str, String)>)> = vec![
        ("no headers", vec![]),
        ("user id only", vec![("X-User-Id", alice.user_id.clone())]),
        ("token only", vec![("X-Auth-Token", alice.token.clone())]),
        (
            "unknown token",
            vec![
                ("X-User-Id", alice.user_id.clone()),
                ("X-Auth-Token", "x".repeat(43)),
            ],
        ),
        (
            "another user's token",
            vec![
                ("X-User-Id", alice.user_id.clone()),
                ("X-Auth-Token", bob.token.clone()),
            ],
        ),
        (
            "empty token",
            vec![
                ("X-User-Id", alice.user_id.clone()),
                ("X-Auth-Token", String::new()),
            ],
        ),
        (
            "huge token",
            vec![
                ("X-User-Id", alice.user_id.clone()),
                ("X-Auth-Token", "a".repeat(5000)),
            ],
        ),
    ];
    for (case, headers) in cases {
        let mut request = app.client.get(app.url("/api/v1/me"));
        for (name, value) in headers {
            request = request.header(name, value);
        }
        let (status, response) = body(request.send().await.unwrap()).await;
        assert_eq!(status, 401, "{case}");
        assert_eq!(response, parsed(NOT_LOGGED_IN), "{case}");
    }
}

async fn an_idle_session_expires(store: Store) {
    let app = spawn_app_with(store, |s| s.idle_timeout_seconds = 3).await;
    app.create_user("alice", false);
    let session = app.login("alice", USER_PASSWORD).await;
    assert_eq!(app.get_as("/api/v1/me", &session).await.status(), 200);

    tokio::time::sleep(Duration::from_millis(4100)).await;

    let (status, me) = body(app.get_as("/api/v1/me", &session).await).await;
    assert_eq!(status, 401);
    assert_eq!(me, parsed(NOT_LOGGED_IN));
}

async fn an_active_session_still_ends_at_its_absolute_lifetime(store: Store) {
    let app = spawn_app_with(store, |s| {
        s.max_lifetime_seconds = 4;
        s.activity_interval_seconds = 0;
    })
    .await;
    app.create_user("alice", false);
    let session = app.login("alice", USER_PASSWORD).await;

    for _ in 0..3 {
        assert_eq!(app.get_as("/api/v1/me", &session).await.status(), 200);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    tokio::time::sleep(Duration::from_millis(3200)).await;

    assert_eq!(app.get_as("/api/v1/me", &session).await.status(), 401);
}

async fn activity_is_written_at_most_once_per_interval(store: Store) {
    // With the default interval, requests do not write.
    let app = spawn_app(store).await;
    app.create_user("alice", false);
    let session = app.login("alice", USER_PASSWORD).await;
    let before = app.query_texts("SELECT CAST(last_activity_at AS TEXT) AS value FROM sessions");
    tokio::time::sleep(Duration::from_millis(20)).await;
    for _ in 0..3 {
        assert_eq!(app.get_as("/api/v1/me", &session).await.status(), 200);
    }
    let after = app.query_texts("SELECT CAST(last_activity_at AS TEXT) AS value FROM sessions");
    assert_eq!(before, after, "no write per request");

    // With an interval of 0, each request records activity.
    let eager = spawn_app_with(store, |s| s.activity_interval_seconds = 0).await;
    eager.create_user("alice", false);
    let session = eager.login("alice", USER_PASSWORD).await;
    let before = eager.query_texts("SELECT CAST(last_activity_at AS TEXT) AS value FROM sessions");
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(eager.get_as("/api/v1/me", &session).await.status(), 200);
    let after = eager.query_texts("SELECT CAST(last_activity_at AS TEXT) AS value FROM sessions");
    assert_ne!(before, after, "activity recorded");
}

async fn the_raw_token_and_secrets_appear_in_no_column(store: Store) {
    let app = spawn_app(store).await;
    app.create_user("alice", false);
    let session = app.login("alice", USER_PASSWORD).await;
    let (secret, backup_codes) = app.enroll_totp(&session).await;
    let secret_base32 = totp_rs::Secret::Raw(secret).to_encoded().to_string();

    let tables = match store {
        Store::Sqlite => app.query_texts(
            "SELECT name AS value FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
        ),
        Store::Postgres => app.query_texts("SELECT tablename AS value FROM pg_tables WHERE schemaname = 'public'"),
    };
    assert!(
        tables.contains(&"sessions".to_owned()),
        "tables: {tables:?}"
    );
    let mut dump = String::new();
    for table in tables {
        let columns = match store {
            Store::Sqlite => app.query_texts(&format!("SELECT name AS value FROM pragma_table_info('{table}')")),
            Store::Postgres => app.query_texts(&format!(
                "SELECT column_name::text AS value FROM information_schema.columns WHERE table_name = '{table}'"
            )),
        };
        for column in columns {
            for value in app.query_texts(&format!(
                "SELECT COALESCE(CAST({column} AS TEXT), '') AS value FROM {table}"
            )) {
                dump.push_str(&value);
                dump.push('\n');
            }
        }
    }
    assert!(dump.contains(&session.user_id), "the dump has the data");
    assert!(!dump.contains(&session.token), "raw token stored");
    assert!(!dump.contains(USER_PASSWORD), "raw password stored");
    assert!(
        !dump.contains(&secret_base32),
        "TOTP secret stored in the clear"
    );
    for code in backup_codes {
        assert!(
            !dump.contains(&code) && !dump.contains(&code.replace('-', "")),
            "backup code stored"
        );
    }
}

async fn bad_login_bodies_get_clear_400s(store: Store) {
    let app = spawn_app(store).await;
    let cases: Vec<(&str, reqwest::RequestBuilder, &str)> = vec![
        (
            "malformed JSON",
            app.client
                .post(app.url("/api/v1/login"))
                .header("content-type", "application/json")
                .body("{\"user\": "),
            "error-invalid-json",
        ),
        (
            "missing password",
            app.client
                .post(app.url("/api/v1/login"))
                .json(&json!({"user": "admin"})),
            "invalid-params",
        ),
        (
            "missing user",
            app.client
                .post(app.url("/api/v1/login"))
                .json(&json!({"password": "x"})),
            "invalid-params",
        ),
        (
            "password of the wrong type",
            app.client
                .post(app.url("/api/v1/login"))
                .json(&json!({"user": "admin", "password": 12})),
            "invalid-params",
        ),
        (
            "username too long",
            app.client
                .post(app.url("/api/v1/login"))
                .json(&json!({"user": "a".repeat(65), "password": "x"})),
            "invalid-params",
        ),
    ];
    for (case, request, error_type) in cases {
        let (status, response) = body(request.send().await.unwrap()).await;
        assert_eq!(status, 400, "{case}: {response}");
        assert_eq!(response["success"], false, "{case}");
        assert_eq!(response["errorType"], error_type, "{case}: {response}");
        let message = response["error"].as_str().unwrap();
        assert!(
            message.ends_with(&format!("[{error_type}]")),
            "{case}: {message}"
        );
        assert!(
            message.len() > error_type.len() + 3,
            "{case}: says what is wrong"
        );
    }
}

async fn login_field_errors_name_the_field(store: Store) {
    let app = spawn_app(store).await;
    let cases = [
        (json!("admin"), "must be object"),
        (json!(["admin", "x"]), "must be object"),
        (json!({"user": 1, "password": "x"}), "'user' must be string"),
        (
            json!({"user": "admin", "password": 12}),
            "'password' must be string",
        ),
        (
            json!({"user": "admin", "password": "x", "code": 123456}),
            "'code' must be string",
        ),
        (json!({"resume": true}), "'resume' must be string"),
        (
            json!({"resume": "t", "user": "admin", "password": "x"}),
            "send either 'resume' or 'user' and 'password', not both",
        ),
        // Names are counted in characters, as the document's maxLength is.
        (
            json!({"user": "é".repeat(65), "password": "x"}),
            "'user' must be 1 to 64 characters",
        ),
        (
            json!({"user": "ad\u{1b}min", "password": "x"}),
            "'user' must not contain control characters",
        ),
    ];
    for (request, message) in cases {
        let (status, response) = body(app.post_json("/api/v1/login", &request).await).await;
        assert_eq!(status, 400, "{request}: {response}");
        assert_eq!(
            response["error"],
            format!("{message} [invalid-params]"),
            "{request}"
        );
    }
}

async fn a_name_of_64_characters_is_a_name_not_a_field_error(store: Store) {
    let app = spawn_app(store).await;
    // 64 two-byte characters: within the document's maxLength, so the
    // answer is about the credentials, not the field.
    let request = json!({"user": "é".repeat(64), "password": "x"});
    let (status, response) = body(app.post_json("/api/v1/login", &request).await).await;
    assert_eq!(status, 401, "{response}");
}

async fn resume_answers_the_same_session_again(store: Store) {
    let app = spawn_app(store).await;
    app.create_user("alice", false);
    let alice = app.login("alice", USER_PASSWORD).await;

    let (status, resumed) = body(
        app.post_json("/api/v1/login", &json!({"resume": alice.token}))
            .await,
    )
    .await;
    assert_eq!(status, 200, "{resumed}");
    assert_eq!(resumed["status"], "success");
    assert_eq!(resumed["data"]["userId"], alice.user_id.as_str());
    assert_eq!(
        resumed["data"]["authToken"],
        alice.token.as_str(),
        "the same token"
    );
    assert_eq!(resumed["data"]["me"]["username"], "alice");
    let (_, page) = body(app.get_as("/api/v1/sessions/list", &alice).await).await;
    assert_eq!(page["total"], 1, "no new session");

    // A token that names no active session is a failed login.
    let unauthorized =
        json!({"status": "error", "error": "Unauthorized", "message": "Unauthorized"});
    for token in ["x".repeat(43), "not a token at all".into()] {
        let (status, refused) = body(
            app.post_json("/api/v1/login", &json!({"resume": token}))
                .await,
        )
        .await;
        assert_eq!((status, &refused), (401, &unauthorized), "{token}");
    }
    assert_eq!(
        app.post_as("/api/v1/logout", &alice, &json!({}))
            .await
            .status(),
        200
    );
    let (status, refused) = body(
        app.post_json("/api/v1/login", &json!({"resume": alice.token}))
            .await,
    )
    .await;
    assert_eq!((status, refused), (401, unauthorized), "an ended session");
}

async fn oversized_bodies_get_413(store: Store) {
    let app = spawn_app_with(store, |s| s.max_body_bytes = 1024).await;

    let response = app
        .post_json(
            "/api/v1/login",
            &json!({"user": "admin", "password": "x".repeat(2000)}),
        )
        .await;

    let (status, response) = body(response).await;
    assert_eq!(status, 413);
    assert_eq!(response["errorType"], "error-payload-too-large");
    assert!(response["error"].as_str().unwrap().contains("1024"));
}

async fn login_records_the_device_ip_and_host(store: Store) {
    let app = spawn_app(store).await;
    app.create_user("alice", false);
    let session = app.login("alice", USER_PASSWORD).await;

    let row = app.query_texts(
        "SELECT device_type || '|' || device_name || '|' || device_version || '|' || device_long_version \
         || '|' || os_name || '|' || os_version || '|' || ip || '|' || host AS value FROM sessions",
    );
    let port = app.address.rsplit(':').next().unwrap().to_owned();
    assert_eq!(
        row,
        vec![format!(
            "browser|Chrome|113.0.0|113.0.0.0|Windows|10|127.0.0.1|127.0.0.1:{port}"
        )]
    );
    let search_term = app.query_texts("SELECT search_term AS value FROM sessions");
    let session_id = app.query_texts("SELECT session_id AS value FROM sessions");
    assert_eq!(
        search_term,
        vec![format!(
            "ChromebrowserWindows{}{}",
            session_id[0], session.user_id
        )]
    );
    assert_eq!(session_id[0].len(), 17);
}

on_both_stores!(x_forwarded_for_counts_only_from_trusted_proxies);

async fn x_forwarded_for_counts_only_from_trusted_proxies(store: Store) {
    let untrusted = spawn_app(store).await;
    untrusted.create_user("alice", false);
    let trusting = spawn_app_with(store, |s| {
        s.trusted_proxies = vec!["127.0.0.1".parse().unwrap()]
    })
    .await;
    trusting.create_user("alice", false);

    for app in [&untrusted, &trusting] {
        let response = app
            .client
            .post(app.url("/api/v1/login"))
            .header("X-Forwarded-For", "198.51.100.7, 203.0.113.9")
            .json(&json!({"user": "alice", "password": USER_PASSWORD}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }

    assert_eq!(
        untrusted.query_texts("SELECT ip AS value FROM sessions"),
        vec!["127.0.0.1"]
    );
    assert_eq!(
        trusting.query_texts("SELECT ip AS value FROM sessions"),
        vec!["203.0.113.9"],
        "the nearest hop before the trusted proxy"
    );
}
