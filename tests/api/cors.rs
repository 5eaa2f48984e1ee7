//! Browsers on other origins: CORS for the listed origins only, and JSON
//! endpoints that a cross-site form or a `text/plain` post cannot reach.

use reqwest::header::HeaderMap;
use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{body, spawn_app, spawn_app_with, Store, TestApp, USER_PASSWORD};
use crate::on_both_stores;

const DASHBOARD: &str = "https://admin.example.com";

async fn with_cors(store: Store) -> TestApp {
    spawn_app_with(store, |settings| {
        settings.cors_origins = vec![
            DASHBOARD.parse().unwrap(),
            "http://127.0.0.1:9".parse().unwrap(),
        ];
    })
    .await
}

async fn preflight(
    app: &TestApp,
    path: &str,
    origin: &str,
    method: &str,
    headers: &str,
) -> (u16, HeaderMap) {
    let response = app
        .client
        .request(Method::OPTIONS, app.url(path))
        .header("Origin", origin)
        .header("Access-Control-Request-Method", method)
        .header("Access-Control-Request-Headers", headers)
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.headers().clone())
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> &'a str {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

async fn preflight_passes_for_a_listed_origin_on_every_api_route(store: Store) {
    let app = with_cors(store).await;
    let routes = [
        ("/api/v1/login", "POST"),
        ("/api/v1/me", "GET"),
        ("/api/v1/sessions/list", "GET"),
        ("/api/v1/sessions/list.all", "GET"),
        ("/api/v1/sessions/info.admin", "GET"),
        ("/api/v1/sessions/logout", "POST"),
        ("/api/admin/v1/authenticated-sessions/list", "GET"),
        ("/api/admin/v1/authenticated-sessions/revoke-user", "POST"),
        ("/api", "POST"),
    ];
    for (path, method) in routes {
        let (status, headers) = preflight(
            &app,
            path,
            DASHBOARD,
            method,
            "x-user-id,x-auth-token,x-2fa-code,content-type,x-request-id",
        )
        .await;
        assert_eq!(status, 200, "{method} {path}");
        assert_eq!(
            header(&headers, "access-control-allow-origin"),
            DASHBOARD,
            "{path}"
        );
        let allowed = header(&headers, "access-control-allow-headers").to_ascii_lowercase();
        for name in [
            "x-user-id",
            "x-auth-token",
            "x-2fa-code",
            "content-type",
            "x-request-id",
        ] {
            assert!(allowed.contains(name), "{path}: {name} not in {allowed}");
        }
        assert!(
            header(&headers, "access-control-allow-methods").contains(method),
            "{path}"
        );
    }
}

async fn answers_to_a_listed_origin_expose_the_paging_and_retry_headers(store: Store) {
    let app = with_cors(store).await;
    let response = app
        .client
        .post(app.url("/api/v1/login"))
        .header("Origin", DASHBOARD)
        .json(&json!({"user": "admin", "password": app.admin_password}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let headers = response.headers();
    assert_eq!(header(headers, "access-control-allow-origin"), DASHBOARD);
    let exposed = header(headers, "access-control-expose-headers").to_ascii_lowercase();
    for name in ["x-total-count", "link", "x-request-id", "retry-after"] {
        assert!(exposed.contains(name), "{name} not in {exposed}");
    }
    assert!(
        header(headers, "access-control-allow-origin") != "*",
        "never a wildcard"
    );
}

async fn an_unlisted_origin_gets_no_allow_origin(store: Store) {
    for app in [with_cors(store).await, spawn_app(store).await] {
        let (status, headers) =
            preflight(&app, "/api", "https://evil.example", "POST", "content-type").await;
        assert_ne!(status, 200, "the preflight is refused");
        assert!(headers.get("access-control-allow-origin").is_none());
        let response = app
            .client
            .get(app.url("/healthz"))
            .header("Origin", "https://evil.example")
            .send()
            .await
            .unwrap();
        // Answered (a browser withholds it from the page), without the header.
        assert_eq!(response.status(), 200);
        assert!(response
            .headers()
            .get("access-control-allow-origin")
            .is_none());
        // A listed origin with another scheme or port is another origin.
        let (_, headers) = preflight(
            &app,
            "/api",
            "http://admin.example.com",
            "POST",
            "content-type",
        )
        .await;
        assert!(headers.get("access-control-allow-origin").is_none());
    }
}

async fn json_endpoints_refuse_forms_and_plain_text_with_415(store: Store) {
    let app = spawn_app(store).await;
    app.create_user("alice", false);
    let alice = app.login("alice", USER_PASSWORD).await;
    // The body is read after the permission check and before the second
    // factor, so an admin without a code reaches it.
    let admin = app.login_admin().await;
    let posts = [
        ("/api/v1/login", None),
        ("/api/v1/sessions/logout.me", Some(&alice)),
        ("/api/v1/sessions/logout", Some(&admin)),
        ("/api/v1/users.2fa.validateTempToken", Some(&alice)),
        ("/api/admin/v1/authenticated-sessions/revoke", Some(&admin)),
        (
            "/api/admin/v1/authenticated-sessions/revoke-user",
            Some(&admin),
        ),
    ];
    for (path, session) in posts {
        for (content_type, payload) in [
            (
                "application/x-www-form-urlencoded",
                "sessionId=x&user=alice",
            ),
            ("text/plain", "{\"sessionId\":\"x\"}"),
            ("multipart/form-data; boundary=x", "--x--"),
        ] {
            let mut request = app
                .client
                .post(app.url(path))
                .header("Content-Type", content_type)
                .body(payload);
            if let Some(session) = session {
                request = request.headers(session.headers());
            }
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            let text = response.text().await.unwrap();
            assert_eq!(status, 415, "{path} {content_type}: {text}");
            let page: Value = serde_json::from_str(&text).unwrap();
            let error_type = if path.contains("/admin/") {
                &page["Error"]
            } else {
                &page["errorType"]
            };
            assert!(
                error_type == "error-unsupported-media-type"
                    || error_type == "err_UnsupportedMediaType",
                "{path}: {page}"
            );
        }
    }
    // The sessions the forms aimed at are still there.
    for session in [&alice, &admin] {
        let (status, me) = body(app.get_as("/api/v1/me", session).await).await;
        assert_eq!(status, 200, "{me}");
    }
}

async fn the_json_action_api_refuses_other_content_types_with_415(store: Store) {
    let app = spawn_app(store).await;
    for content_type in ["text/plain", "application/x-www-form-urlencoded", ""] {
        let mut request = app.client.post(app.url("/api")).body(
            json!({"action": "createSession", "params": {"username": "admin", "password": app.admin_password}})
                .to_string(),
        );
        if !content_type.is_empty() {
            request = request.header("Content-Type", content_type);
        }
        let (status, reply) = body(request.send().await.unwrap()).await;
        assert_eq!(status, 415, "{content_type:?}: {reply}");
        assert_eq!(reply["errorCode"], 34008, "{reply}");
        assert!(reply["authToken"].is_null(), "no session was made: {reply}");
    }
    let sessions = app.query_texts("SELECT CAST(COUNT(*) AS TEXT) AS value FROM sessions");
    assert_eq!(sessions, ["0"]);
}

on_both_stores!(
    preflight_passes_for_a_listed_origin_on_every_api_route,
    answers_to_a_listed_origin_expose_the_paging_and_retry_headers,
    an_unlisted_origin_gets_no_allow_origin,
    json_endpoints_refuse_forms_and_plain_text_with_415,
    the_json_action_api_refuses_other_content_types_with_415,
);
