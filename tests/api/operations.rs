//! Health, readiness, metrics, request ids, routing errors, outages and the sweep.

use std::time::Duration;

use serde_json::json;

use crate::helpers::{body, spawn_app, spawn_app_with, Store, USER_PASSWORD};
use crate::on_both_stores;

on_both_stores!(
    health_and_readiness_answer,
    metrics_count_requests_by_route_and_status_and_show_the_pool,
    every_response_carries_a_request_id,
    unknown_routes_get_a_json_404,
    wrong_methods_get_405_with_allow,
    head_is_answered_wherever_get_is,
    the_sweep_ends_expired_sessions_and_purges_old_ones,
);

async fn health_and_readiness_answer(store: Store) {
    let app = spawn_app(store).await;

    let (status, health) = body(app.client.get(app.url("/healthz")).send().await.unwrap()).await;
    assert_eq!((status, health), (200, json!({"status": "ok"})));
    let (status, ready) = body(app.client.get(app.url("/readyz")).send().await.unwrap()).await;
    assert_eq!((status, ready), (200, json!({"status": "ready"})));
}

async fn metrics_count_requests_by_route_and_status_and_show_the_pool(store: Store) {
    let app = spawn_app(store).await;
    app.client.get(app.url("/healthz")).send().await.unwrap();
    app.client.get(app.url("/healthz")).send().await.unwrap();
    app.client.get(app.url("/api/v1/me")).send().await.unwrap();

    let response = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    let text = response.text().await.unwrap();

    assert!(
        text.contains(
            r#"sessiond_http_requests_total{method="GET",route="/healthz",status="200"} 2"#
        ),
        "{text}"
    );
    assert!(text.contains(
        r#"sessiond_http_requests_total{method="GET",route="/api/v1/me",status="401"} 1"#
    ));
    assert!(text.contains(r#"sessiond_http_request_duration_seconds_count{method="GET",route="/healthz",status="200"} 2"#));
    assert!(text.contains("sessiond_db_pool_connections "));
    assert!(text.contains("sessiond_db_pool_idle_connections "));
    assert!(text.contains("sessiond_db_pool_max_connections 4"));
    // Buckets reach past the store timeout, to 10 s.
    assert!(text.contains(
        r#"sessiond_http_request_duration_seconds_bucket{method="GET",route="/healthz",status="200",le="10"} 2"#
    ), "{text}");
    assert!(text.contains(&format!(
        "sessiond_build_info{{version=\"{}\"}} 1",
        env!("CARGO_PKG_VERSION")
    )));
}

async fn every_response_carries_a_request_id(store: Store) {
    let app = spawn_app(store).await;

    let generated = app.client.get(app.url("/api/v1/me")).send().await.unwrap();
    let id = generated.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(id.len(), 36, "a uuid: {id}");
    let echoed = app
        .client
        .get(app.url("/healthz"))
        .header("x-request-id", "trace-abc.123")
        .send()
        .await
        .unwrap();
    assert_eq!(echoed.headers()["x-request-id"], "trace-abc.123");
    let replaced = app
        .client
        .get(app.url("/healthz"))
        .header("x-request-id", "has spaces & stuff")
        .send()
        .await
        .unwrap();
    assert_ne!(replaced.headers()["x-request-id"], "has spaces & stuff");
}

async fn unknown_routes_get_a_json_404(store: Store) {
    let app = spawn_app(store).await;

    let (status, response) = body(
        app.client
            .get(app.url("/api/v1/nope"))
            .send()
            .await
            .unwrap(),
    )
    .await;

    assert_eq!(status, 404);
    assert_eq!(
        response,
        json!({"success": false, "error": "No route for GET /api/v1/nope"})
    );

    // The admin API answers in its own format.
    let (status, response) = body(
        app.client
            .get(app.url("/api/admin/v1/authenticated-sessions/nope"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 404);
    assert_eq!(
        response,
        json!({"Success": false, "Error": "err_NotFound",
               "Message": "No route for GET /api/admin/v1/authenticated-sessions/nope"})
    );
}

async fn wrong_methods_get_405_with_allow(store: Store) {
    use reqwest::Method;
    let app = spawn_app(store).await;
    let trace = Method::from_bytes(b"TRACE").unwrap();
    let cases = [
        (trace, "/api/v1/me", "GET, HEAD"),
        (Method::POST, "/api/v1/me", "GET, HEAD"),
        (Method::GET, "/api", "POST"),
        (Method::PUT, "/api/v1/sessions/logout.me", "POST"),
        (
            Method::DELETE,
            "/api/admin/v1/authenticated-sessions/user-sessions/someone",
            "GET, HEAD",
        ),
        (Method::POST, "/dashboard/app.js", "GET, HEAD"),
        (Method::POST, "/healthz", "GET, HEAD"),
    ];
    for (method, path, allow) in cases {
        let response = app
            .client
            .request(method.clone(), app.url(path))
            .send()
            .await
            .unwrap();
        let allowed = response.headers().get("allow").cloned();
        let (status, reply) = body(response).await;
        assert_eq!(status, 405, "{method} {path}: {reply}");
        assert_eq!(allowed.unwrap(), allow, "{method} {path}");
        let message = format!("{method} is not allowed on {path}; use {allow}");
        // Each surface answers in its own format.
        let expected = if path == "/api" {
            json!({"result": {}, "requestId": null, "errorCode": 34009, "errorMessage": message})
        } else if path.starts_with("/api/admin/") {
            json!({"Success": false, "Error": "err_MethodNotAllowed", "Message": message})
        } else {
            json!({"success": false, "error": message})
        };
        assert_eq!(reply, expected, "{method} {path}");
    }
    // A path no route has is still 404, whatever the method.
    let response = app
        .client
        .post(app.url("/api/v1/nope"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    assert!(response.headers().get("allow").is_none());
}

async fn head_is_answered_wherever_get_is(store: Store) {
    let app = spawn_app(store).await;
    let get = app.client.get(app.url("/healthz")).send().await.unwrap();
    let length = get.bytes().await.unwrap().len();
    let head = app.client.head(app.url("/healthz")).send().await.unwrap();
    assert_eq!(head.status(), 200);
    assert_eq!(
        head.headers()["content-length"].to_str().unwrap(),
        length.to_string(),
        "HEAD says how long GET's body is"
    );
    assert!(head.bytes().await.unwrap().is_empty(), "and sends none");

    // An authenticated route authenticates a HEAD as it does a GET.
    let admin = app.login_admin().await;
    let head = app
        .client
        .head(app.url("/api/v1/me"))
        .headers(admin.headers())
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), 200);
    let anonymous = app.client.head(app.url("/api/v1/me")).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);

    // Where GET is not served, HEAD is refused under its own name.
    let head = app.client.head(app.url("/api")).send().await.unwrap();
    assert_eq!(head.status(), 405);
    assert_eq!(head.headers()["allow"], "POST");
    let head = app
        .client
        .head(app.url("/api/v1/nope"))
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), 404);

    // The docs page: `/docs` redirects, and no outside validator is named.
    let docs = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(app.url("/docs"))
        .send()
        .await
        .unwrap();
    assert_eq!(docs.status(), 301);
    assert_eq!(docs.headers()["location"], "/docs/");
    let config = app.get_text("/docs/swagger-initializer.js").await;
    assert!(config.contains(r#""validatorUrl": "none""#), "{config}");
}

async fn the_sweep_ends_expired_sessions_and_purges_old_ones(store: Store) {
    let app = spawn_app_with(store, |s| {
        s.idle_timeout_seconds = 1;
        s.sweep_interval_seconds = 1;
        s.retention_seconds = 1;
    })
    .await;
    app.create_user("alice", false);
    app.login("alice", USER_PASSWORD).await;
    assert_eq!(
        app.query_texts("SELECT session_id AS value FROM sessions")
            .len(),
        1
    );

    // Expires after 1 s, is marked ended by a sweep, and purged 1 s after that.
    let mut remaining = usize::MAX;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        remaining = app
            .query_texts("SELECT session_id AS value FROM sessions")
            .len();
        if remaining == 0 {
            break;
        }
    }
    assert_eq!(remaining, 0, "the sweep purged the expired session");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn losing_the_database_gives_503_with_a_retryable_message() {
    let app = spawn_app_with(Store::Postgres, |s| s.db_timeout_seconds = 1).await;
    app.create_user("alice", false);
    let session = app.login("alice", USER_PASSWORD).await;
    assert_eq!(app.get_as("/api/v1/me", &session).await.status(), 200);

    let name = app.database_name().unwrap().to_owned();
    let mut admin = <diesel::PgConnection as diesel::Connection>::establish(
        &crate::helpers::postgres_admin_url(),
    )
    .unwrap();
    diesel::RunQueryDsl::execute(
        diesel::sql_query(format!("DROP DATABASE {name} WITH (FORCE)")),
        &mut admin,
    )
    .unwrap();

    for _ in 0..2 {
        let response = app.get_as("/api/v1/me", &session).await;
        assert_eq!(response.headers()["retry-after"], "1");
        let (status, outage) = body(response).await;
        assert_eq!(status, 503, "{outage}");
        assert_eq!(outage["errorType"], "error-unavailable");
        assert!(outage["error"].as_str().unwrap().contains("retry"));
    }
    let (status, ready) = body(app.client.get(app.url("/readyz")).send().await.unwrap()).await;
    assert_eq!(status, 503);
    assert_eq!(ready["status"], "unavailable");
    let (status, health) = body(app.client.get(app.url("/healthz")).send().await.unwrap()).await;
    assert_eq!(
        (status, health),
        (200, json!({"status": "ok"})),
        "the process is still up"
    );
}

/// A test's Postgres database is dropped with it: a run leaves none behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tests_postgres_database_is_dropped_with_it() {
    use crate::helpers::{admin_connection, database_exists};
    let app = crate::helpers::spawn_app(Store::Postgres).await;
    let name = app
        .database_url
        .rsplit('/')
        .next()
        .and_then(|rest| rest.split('?').next())
        .unwrap()
        .to_owned();
    assert!(name.starts_with("sessiond_test_"), "{name}");
    assert!(database_exists(&mut admin_connection(), &name));
    drop(app);
    assert!(
        !database_exists(&mut admin_connection(), &name),
        "{name} is left behind"
    );
}
