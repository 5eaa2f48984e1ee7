//! Hostile callers: filters built to be slow or to break the store, bursts
//! of parallel guesses, bursts of logins, bodies that never arrive, and
//! requests with made-up methods.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::{
    body, current_code, spawn_app, spawn_app_with, Session, Store, TestApp, USER_PASSWORD,
};
use crate::on_both_stores;

/// Accepted by validation, and slow on Postgres: about 75 µs a row there
/// (the written-out repetitions come to 1,000 units, the most allowed).
const COSTLY_FILTER: &str = "[a-z]{0,250}[0-9]{0,250}[a-z]{0,250}[0-9]{0,249}q";

fn list_path(filter: &str) -> String {
    format!("/api/v1/sessions/list?filter={}", urlencode(filter))
}

fn urlencode(raw: &str) -> String {
    raw.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

async fn filters_postgres_cannot_compile_get_400_on_both_lists(store: Store) {
    let app = spawn_app(store).await;
    app.create_user("alice", false);
    let alice = app.login("alice", USER_PASSWORD).await;
    let (admin, _) = app.admin_past_2fa().await;
    for filter in [
        "^*",
        "a|^*",
        "\\A{2}",
        " ?*?",
        "(((a{0,9}){0,9}){0,9}){0,9}",
        "([a-z]{0,10}){0,255}z",
    ] {
        for (path, session) in [
            (list_path(filter), &alice),
            (list_path(filter).replace("/list?", "/list.all?"), &admin),
        ] {
            let (status, page) = body(app.get_as(&path, session).await).await;
            assert_eq!(status, 400, "{path}: {page}");
            assert_eq!(page["errorType"], "error-invalid-filter", "{path}: {page}");
            let message = page["error"].as_str().unwrap();
            assert!(
                message.starts_with("Invalid filter: `") || message.contains("too complex"),
                "says what to change: {page}"
            );
        }
    }
}

async fn a_filter_over_its_budget_is_a_400_that_says_so(store: Store) {
    let app = spawn_app_with(store, |settings| settings.filter_timeout_ms = 1).await;
    app.create_user("alice", false);
    let alice = app.login("alice", USER_PASSWORD).await;
    app.bulk_sessions("alice", 20_000);

    let (status, page) = body(app.get_as(&list_path(COSTLY_FILTER), &alice).await).await;
    assert_eq!(status, 400, "{page}");
    assert_eq!(page["errorType"], "error-invalid-filter");
    let message = page["error"].as_str().unwrap();
    assert!(message.contains("too expensive"), "{message}");
    assert!(
        message.contains("more specific"),
        "says what to change: {message}"
    );
    // The list without a filter still answers.
    let (status, page) = body(app.get_as("/api/v1/sessions/list?count=1", &alice).await).await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["total"], 20_001);
    // The caller's filter, not the store, was too slow: no alert-worthy
    // statement timeout is counted.
    let text = app.get_text("/metrics").await;
    assert!(
        text.contains("sessiond_db_statement_timeouts_total{by=\"database\"} 0\n"),
        "{text}"
    );

    if let Some(database) = app.database_name() {
        // Cancelled in the database, not left running after the answer.
        let running = app.query_texts(&format!(
            "SELECT query AS value FROM pg_stat_activity WHERE datname = '{database}' \
             AND state = 'active' AND query LIKE '%regex_imatch%' AND pid <> pg_backend_pid()"
        ));
        assert!(running.is_empty(), "still running: {running:?}");
    }
}

/// Postgres only: an operator (or the database) cancelling a statement gets
/// the caller a retryable 503, not a 500.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_statement_the_database_cancels_is_a_retryable_503() {
    let app = spawn_app_with(Store::Postgres, |settings| {
        settings.filter_timeout_ms = 60_000;
        settings.statement_timeout_ms = 60_000;
        settings.db_timeout_seconds = 60;
    })
    .await;
    app.create_user("alice", false);
    let alice = app.login("alice", USER_PASSWORD).await;
    app.bulk_sessions("alice", 40_000);
    let database = app.database_name().unwrap().to_owned();

    let request = {
        let client = app.client.clone();
        let url = app.url(&list_path(COSTLY_FILTER));
        let headers = alice.headers();
        tokio::spawn(async move { client.get(url).headers(headers).send().await })
    };
    let find = format!(
        "SELECT CAST(pid AS TEXT) AS value FROM pg_stat_activity WHERE datname = '{database}' \
         AND state = 'active' AND query LIKE '%regex_imatch%' AND pid <> pg_backend_pid()"
    );
    let mut cancelled = false;
    for _ in 0..200 {
        if let Some(pid) = app.query_texts(&find).first() {
            let done = app.query_texts(&format!(
                "SELECT CAST(pg_cancel_backend({pid}) AS TEXT) AS value"
            ));
            cancelled = done == ["true"];
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(
        cancelled,
        "the filtered query was seen running and cancelled"
    );
    let response = request.await.unwrap().expect("an answer");
    let retry_after = response.headers().get("retry-after").cloned();
    let (status, page) = body(response).await;
    assert_eq!(status, 503, "{page}");
    assert_eq!(retry_after.unwrap(), "1");
    assert_eq!(page["errorType"], "error-unavailable", "{page}");
}

/// Postgres only, where a filter can be slow: sixteen costly filters at
/// once, from four users, leave the rest of the pool to everyone else.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn costly_filters_in_parallel_do_not_starve_authentication() {
    let app = spawn_app_with(Store::Postgres, |settings| {
        settings.db_pool_size = 4;
        settings.db_timeout_seconds = 2;
        // Each filtered statement may run past the store timeout, holding
        // its connection after its caller got 503: only the bulkhead keeps
        // such statements from holding every connection.
        settings.filter_timeout_ms = 4_000;
        settings.statement_timeout_ms = 4_000;
    })
    .await;
    let mut hostile = Vec::new();
    for name in ["h1", "h2", "h3", "h4"] {
        app.create_user(name, false);
        hostile.push(app.login(name, USER_PASSWORD).await);
        app.bulk_sessions(name, 15_000);
    }
    app.create_user("carol", false);
    let carol = app.login("carol", USER_PASSWORD).await;

    let mut filters = Vec::new();
    for i in 0..16 {
        let client = app.client.clone();
        let url = app.url(&list_path(COSTLY_FILTER));
        let headers = hostile[i % hostile.len()].headers();
        filters.push(tokio::spawn(async move {
            client
                .get(url)
                .headers(headers)
                .send()
                .await
                .map(|r| r.status().as_u16())
        }));
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    for _ in 0..20 {
        let (status, me) = body(app.get_as("/api/v1/me", &carol).await).await;
        assert_eq!(status, 200, "another user's /me while filters run: {me}");
    }
    let mut statuses = Vec::new();
    for filter in filters {
        statuses.push(filter.await.unwrap().expect("an answer"));
    }
    assert!(
        statuses.iter().all(|s| [200, 400, 429, 503].contains(s)),
        "{statuses:?}"
    );
    assert!(
        statuses.contains(&429),
        "a user's share of the bulkhead is enforced: {statuses:?}"
    );
}

async fn parallel_wrong_passwords_are_checked_at_most_the_limit(store: Store) {
    let app = spawn_app(store).await;
    app.create_user("alice", false);

    let attempt = |password: String| {
        let client = app.client.clone();
        let url = app.url("/api/v1/login");
        tokio::spawn(async move {
            client
                .post(url)
                .json(&json!({"user": "alice", "password": password}))
                .send()
                .await
                .map(|r| r.status().as_u16())
        })
    };
    let mut wrong = Vec::new();
    for i in 0..29 {
        wrong.push(attempt(format!("wrong password {i}")));
    }
    // The correct password comes 30th, while the wrong ones are in flight.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let correct = attempt(USER_PASSWORD.to_owned());
    for i in 29..39 {
        wrong.push(attempt(format!("wrong password {i}")));
    }
    let mut statuses = Vec::new();
    for request in wrong {
        statuses.push(request.await.unwrap().expect("an answer"));
    }
    let correct = correct.await.unwrap().expect("an answer");
    let checked = statuses.iter().filter(|s| **s == 401).count();
    assert!(
        checked <= 5,
        "{checked} wrong passwords were checked: {statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| *s == 401 || *s == 429),
        "{statuses:?}"
    );
    assert_eq!(
        correct, 429,
        "the correct password in the burst is not checked"
    );
    let charged = app.query_texts(
        "SELECT CAST(COUNT(*) AS TEXT) AS value FROM auth_failures WHERE scope = 'login-user'",
    );
    assert_eq!(charged, ["5"], "exactly the limit is charged");
}

async fn parallel_wrong_codes_are_checked_at_most_the_limit(store: Store) {
    // As many guesses in flight at once as a production pool allows.
    let app = spawn_app_with(store, |settings| {
        settings.db_pool_size = 16;
        settings.workers = 4;
    })
    .await;
    let (admin, secret) = app.admin_past_2fa().await;
    app.end_two_factor_window(&admin);
    let valid: Vec<String> = (-2..=2).map(|o| current_code(&secret, o)).collect();
    let wrong: Vec<String> = (0..1_000_000)
        .step_by(7_919)
        .map(|n| format!("{n:06}"))
        .filter(|c| !valid.contains(c))
        .take(39)
        .collect();

    let attempt = |code: String, session: Session| {
        let client = app.client.clone();
        let url = app.url("/api/v1/sessions/list.all");
        tokio::spawn(async move {
            let response = client
                .get(url)
                .headers(session.headers())
                .header("x-2fa-code", code)
                .send()
                .await
                .expect("an answer");
            let status = response.status().as_u16();
            let page: Value = response.json().await.unwrap_or(Value::Null);
            (
                status,
                page["errorType"].as_str().unwrap_or_default().to_owned(),
            )
        })
    };
    let mut guesses = Vec::new();
    for code in wrong.iter().take(29) {
        guesses.push(attempt(code.clone(), admin.clone()));
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let correct = attempt(current_code(&secret, 0), admin.clone());
    for code in wrong.iter().skip(29) {
        guesses.push(attempt(code.clone(), admin.clone()));
    }
    let mut outcomes = Vec::new();
    for guess in guesses {
        outcomes.push(guess.await.unwrap());
    }
    let (status, error_type) = correct.await.unwrap();
    let checked = outcomes.iter().filter(|(_, t)| t == "totp-invalid").count();
    assert!(
        checked <= 5,
        "{checked} wrong codes were checked: {outcomes:?}"
    );
    assert!(
        outcomes
            .iter()
            .all(|(s, t)| *s == 400 && (t == "totp-invalid" || t == "totp-max-attempts")),
        "{outcomes:?}"
    );
    assert_eq!(
        (status, error_type.as_str()),
        (400, "totp-max-attempts"),
        "the correct code in the burst is not checked"
    );
}

async fn a_login_burst_hashes_at_most_the_cap_at_once(store: Store) {
    let app = spawn_app_with(store, |settings| {
        settings.hash_concurrency = 2;
        // Attempts in flight count against the login limits until they
        // succeed; this burst is about hashing, not throttling.
        settings.login_max_failures_per_user = 100;
        settings.login_max_failures_per_ip = 100;
    })
    .await;
    app.create_user("alice", false);
    let mut logins = Vec::new();
    for _ in 0..32 {
        let client = app.client.clone();
        let url = app.url("/api/v1/login");
        logins.push(tokio::spawn(async move {
            client
                .post(url)
                .json(&json!({"user": "alice", "password": USER_PASSWORD}))
                .send()
                .await
                .map(|r| r.status().as_u16())
        }));
    }
    for login in logins {
        assert_eq!(login.await.unwrap().expect("an answer"), 200);
    }
    assert_eq!(app.metric("sessiond_password_hash_slots").await, Some(2.0));
    let peak = app.metric("sessiond_password_hashes_peak").await.unwrap();
    assert!((1.0..=2.0).contains(&peak), "peak {peak}");
    assert_eq!(
        app.metric("sessiond_password_hashes_running").await,
        Some(0.0)
    );
}

/// Sends the head and part of the body, then nothing; returns what the
/// server answered and whether it then closed the connection.
fn send_partial_body(app: &TestApp, path: &str) -> (String, bool) {
    send_partial_body_of(app, path, 100)
}

/// [`send_partial_body`], announcing a body of `length` bytes.
fn send_partial_body_of(app: &TestApp, path: &str, length: usize) -> (String, bool) {
    let address = app.address.trim_start_matches("http://");
    let mut stream = TcpStream::connect(address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\n\
         Content-Length: {length}\r\n\r\n{{\"user\""
    )
    .unwrap();
    let mut received = Vec::new();
    let mut buffer = [0u8; 4096];
    let closed = loop {
        match stream.read(&mut buffer) {
            Ok(0) => break true,
            Ok(n) => received.extend_from_slice(&buffer[..n]),
            Err(_) => break false,
        }
    };
    (String::from_utf8_lossy(&received).into_owned(), closed)
}

async fn a_body_that_never_arrives_gets_408_and_the_connection_is_closed(store: Store) {
    let app = spawn_app_with(store, |settings| settings.body_timeout_seconds = 1).await;
    let (response, closed) =
        tokio::task::block_in_place(|| send_partial_body(&app, "/api/v1/login"));
    assert!(response.starts_with("HTTP/1.1 408"), "{response}");
    assert!(response.contains("error-request-timeout"), "{response}");
    assert!(closed, "the connection was left open");

    // The JSON action API answers in its own envelope, and closes too.
    let (response, closed) = tokio::task::block_in_place(|| send_partial_body(&app, "/api"));
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains("\"errorCode\":34007"), "{response}");
    assert!(closed, "the connection was left open");
}

/// A body that names a key twice is refused before anything is done: which
/// of the two counts would depend on the parser that reads it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_names_a_key_twice_is_refused() {
    let app = spawn_app(Store::Sqlite).await;
    app.create_user("bob", false);
    let response = app
        .client
        .post(app.url("/api/v1/login"))
        .header("content-type", "application/json")
        .body(r#"{"user":"admin","password":"wrong","user":"bob"}"#)
        .send()
        .await
        .unwrap();
    let (status, refused) = body(response).await;
    assert_eq!(status, 400, "{refused}");
    assert_eq!(refused["errorType"], "error-invalid-json");
    assert!(
        refused["error"]
            .as_str()
            .unwrap()
            .contains(r#"the key "user" appears twice"#),
        "{refused}"
    );
    let text = app.get_text("/metrics").await;
    assert!(
        text.contains(
            r#"sessiond_logins_total{method="password",result="failed",surface="rocket_chat"} 0"#
        ),
        "no attempt was counted against anyone: {text}"
    );
}

/// A body whose `Content-Length` is over the limit gets 413 at once, not
/// after the body deadline (an hour here; the client waits 20 s at most).
async fn a_body_announced_over_the_limit_gets_413_before_it_is_sent(store: Store) {
    let app = spawn_app_with(store, |settings| {
        settings.body_timeout_seconds = 3600;
        settings.max_body_bytes = 65_536;
    })
    .await;
    let (response, closed) =
        tokio::task::block_in_place(|| send_partial_body_of(&app, "/api/v1/login", 70_000));
    assert!(response.starts_with("HTTP/1.1 413"), "{response}");
    assert!(closed, "the connection was left open");
    let (response, closed) =
        tokio::task::block_in_place(|| send_partial_body_of(&app, "/api", 70_000));
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains("\"errorCode\":34006"), "{response}");
    assert!(closed, "the connection was left open");
}

async fn made_up_methods_share_one_metrics_label(store: Store) {
    let app = spawn_app(store).await;
    for i in 0..30 {
        let method = reqwest::Method::from_bytes(format!("FOO{i}").as_bytes()).unwrap();
        let response = app
            .client
            .request(method, app.url("/healthz"))
            .send()
            .await
            .unwrap();
        assert!(response.status().is_client_error());
    }
    let text = app.get_text("/metrics").await;
    assert!(!text.contains("FOO"), "made-up methods became labels");
    assert!(text.contains("method=\"other\""), "{text}");
}

on_both_stores!(
    filters_postgres_cannot_compile_get_400_on_both_lists,
    a_filter_over_its_budget_is_a_400_that_says_so,
    parallel_wrong_passwords_are_checked_at_most_the_limit,
    parallel_wrong_codes_are_checked_at_most_the_limit,
    a_login_burst_hashes_at_most_the_cap_at_once,
    a_body_that_never_arrives_gets_408_and_the_connection_is_closed,
    a_body_announced_over_the_limit_gets_413_before_it_is_sent,
    made_up_methods_share_one_metrics_label,
);
