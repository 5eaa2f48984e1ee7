//! The hot requests cost the store one statement each, authentication
//! included, counted by `/metrics` (`sessiond_db_statements_total`); and
//! what the one statement answers is what the ordinary path answers.

use std::time::Duration;

use serde_json::{json, Value};

use super::{get, ids};
use crate::helpers::{body, spawn_app, spawn_app_with, Session, Store, TestApp, USER_PASSWORD};
use crate::on_both_stores;

on_both_stores!(
    hot_requests_cost_one_statement,
    everyones_first_pages_in_one_statement_match_the_bulkhead_path,
    the_one_statement_paths_record_activity_when_due,
);

/// Store calls and statements sent since the app started.
async fn store_cost(app: &TestApp) -> (f64, f64) {
    let calls = app.metric("sessiond_db_calls_total").await;
    let statements = app.metric("sessiond_db_statements_total").await;
    (
        calls.expect("sessiond_db_calls_total in /metrics"),
        statements.expect("sessiond_db_statements_total in /metrics"),
    )
}

/// The status, the body, and the store calls and statements of one GET.
async fn costed(app: &TestApp, path: &str, session: &Session) -> (u16, Value, f64, f64) {
    let (calls_before, statements_before) = store_cost(app).await;
    let (status, body) = get(app, path, session).await;
    let (calls_after, statements_after) = store_cost(app).await;
    (
        status,
        body,
        calls_after - calls_before,
        statements_after - statements_before,
    )
}

async fn hot_requests_cost_one_statement(store: Store) {
    let app = spawn_app(store).await;
    app.create_user("alice", false);
    let alice = app.sessions_for("alice", 3).await;
    let (admin, _) = app.admin_past_2fa().await;
    let (_, page) = get(&app, "/api/v1/sessions/list", &alice[0]).await;
    let other = ids(&page)[1].clone();

    let info = format!("/api/v1/sessions/info?sessionId={other}");
    let sorted = "/api/v1/sessions/list?sort=%7B%22device.name%22%3A1%7D&count=2&offset=1";
    let all_oldest_first = "/api/v1/sessions/list.all?sort=%7B%22loginAt%22%3A1%7D&count=2";
    let requests = [
        ("/api/v1/me", &alice[0]),
        ("/api/v1/sessions/list", &alice[0]),
        (sorted, &alice[1]),
        (info.as_str(), &alice[2]),
        ("/api/v1/sessions/list.all", &admin),
        (all_oldest_first, &admin),
    ];
    for (path, session) in requests {
        let (status, body, calls, statements) = costed(&app, path, session).await;
        assert_eq!(status, 200, "{path}: {body}");
        assert_eq!(
            (calls, statements),
            (1.0, 1.0),
            "{path}: one store call of one statement"
        );
    }

    // listSessions by a user who sees only their own sessions.
    let (calls_before, statements_before) = store_cost(&app).await;
    let login = app
        .post_json(
            "/api",
            &json!({"api": "admin", "action": "createSession",
                    "params": {"username": "alice", "password": USER_PASSWORD}}),
        )
        .await;
    let (_, created) = body(login).await;
    let token = created["authToken"].as_str().unwrap().to_owned();
    let (calls_between, statements_between) = store_cost(&app).await;
    assert!(calls_between > calls_before && statements_between > statements_before);
    let listed = app
        .post_json(
            "/api",
            &json!({"action": "listSessions", "authToken": token}),
        )
        .await;
    let (status, listed) = body(listed).await;
    let (calls_after, statements_after) = store_cost(&app).await;
    assert_eq!((status, &listed["errorCode"]), (200, &json!(0)), "{listed}");
    assert_eq!(listed["result"]["sessions"].as_array().unwrap().len(), 4);
    assert_eq!(
        (
            calls_after - calls_between,
            statements_after - statements_between
        ),
        (1.0, 1.0),
        "listSessions: one store call of one statement"
    );

    // What the one statement cannot tell is told by the ordinary path in
    // the same store call: a wrong token, an unknown session.
    let forged = Session {
        user_id: alice[0].user_id.clone(),
        token: "x".repeat(43),
    };
    let (status, _, calls, _) = costed(&app, "/api/v1/sessions/list", &forged).await;
    assert_eq!((status, calls), (401, 1.0));
    let unknown = "/api/v1/sessions/info?sessionId=AAAAAAAAAAAAAAAAA";
    let (status, _, calls, _) = costed(&app, unknown, &alice[0]).await;
    assert_eq!((status, calls), (404, 1.0));
    let (status, _, calls, _) = costed(&app, "/api/v1/sessions/list.all", &alice[0]).await;
    assert_eq!((status, calls), (403, 1.0));
}

/// `list.all` without a filter reads its first pages in the statement that
/// authenticates; with a filter that matches every session it takes the
/// bulkhead path. Both must show the same rows, total and continuation.
async fn everyones_first_pages_in_one_statement_match_the_bulkhead_path(store: Store) {
    let app = spawn_app(store).await;
    for name in ["alice", "bob"] {
        app.create_user(name, false);
        app.sessions_for(name, 3).await;
    }
    let (admin, _) = app.admin_past_2fa().await;
    let (_, own) = get(&app, "/api/v1/sessions/list", &admin).await;
    let everyone = 6 + own["total"].as_i64().unwrap();
    for sort in [
        "",
        "&sort=%7B%22loginAt%22%3A1%7D",
        "&sort=%7B%22loginAt%22%3A-1%7D",
    ] {
        for offset in [0, 2, 5, 7, 50] {
            let path = format!("/api/v1/sessions/list.all?count=2&offset={offset}{sort}");
            let (calls_before, _) = store_cost(&app).await;
            let (status, fused) = get(&app, &path, &admin).await;
            let (calls_after, _) = store_cost(&app).await;
            assert_eq!(status, 200, "{path}: {fused}");
            assert_eq!(calls_after - calls_before, 1.0, "{path}: one store call");

            let filtered = format!("{path}&filter=.");
            let (status, ordinary) = get(&app, &filtered, &admin).await;
            assert_eq!(status, 200, "{filtered}: {ordinary}");
            assert_eq!(ids(&fused), ids(&ordinary), "{path}");
            for key in ["count", "offset", "total"] {
                assert_eq!(fused[key], ordinary[key], "{path}: {key}");
            }
            assert_eq!(
                fused["nextCursor"].is_string(),
                ordinary["nextCursor"].is_string(),
                "{path}"
            );
            assert_eq!(fused["total"], everyone, "{path}: 3 + 3 + the admin's");
        }
    }
}

/// With an activity interval of 0 every request is due to record activity;
/// the one-statement paths do, after their read.
async fn the_one_statement_paths_record_activity_when_due(store: Store) {
    let app = spawn_app_with(store, |s| s.activity_interval_seconds = 0).await;
    app.create_user("alice", false);
    let alice = app.sessions_for("alice", 2).await;
    let (admin, _) = app.admin_past_2fa().await;
    let (_, page) = get(&app, "/api/v1/sessions/list", &alice[0]).await;
    let other = ids(&page)[1].clone();
    let seen = || {
        app.query_texts("SELECT CAST(last_activity_at AS TEXT) AS value FROM sessions ORDER BY id")
    };
    let info = format!("/api/v1/sessions/info?sessionId={other}");
    for (path, session) in [
        ("/api/v1/sessions/list", &alice[0]),
        (info.as_str(), &alice[1]),
        ("/api/v1/sessions/list.all", &admin),
    ] {
        let before = seen();
        tokio::time::sleep(Duration::from_millis(20)).await;
        let (status, body) = get(&app, path, session).await;
        assert_eq!(status, 200, "{path}: {body}");
        assert_ne!(before, seen(), "{path}: activity recorded");
    }
}
