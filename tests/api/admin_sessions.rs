//! `/api/admin/v1/authenticated-sessions/*`: lists, paging headers, revocation
//! and access rules, on both stores.

use serde_json::{json, Value};

use crate::helpers::{body, spawn_app, Session, Store, TestApp, USER_PASSWORD};
use crate::on_both_stores;

const BASE: &str = "/api/admin/v1/authenticated-sessions";
const UNAUTHORIZED: &str = r#"{"Success":false,"Error":"err_Unauthorized","Message":"You must be logged in to do this: send X-User-Id and X-Auth-Token of an active session"}"#;
const FORBIDDEN: &str = r#"{"Success":false,"Error":"err_Forbidden","Message":"This API needs the manage-sessions permission, which the admin role has"}"#;
const NO_ACTIVE_SESSION: &str = r#"{"Success":false,"Error":"err_NoActiveSession","Message":"No active session was found for the provided session ID"}"#;

fn parsed(raw: &str) -> Value {
    serde_json::from_str(raw).unwrap()
}

async fn admin_get(app: &TestApp, admin: &Session, path: &str) -> reqwest::Response {
    app.get_as(&format!("{BASE}{path}"), admin).await
}

fn counts(list: &Value) -> Vec<(String, i64, bool)> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|row| {
            (
                row["UserName"].as_str().unwrap().to_owned(),
                row["SessionCount"].as_i64().unwrap(),
                row["IsOperator"].as_bool().unwrap(),
            )
        })
        .collect()
}

fn is_iso_seconds(value: &Value) -> bool {
    let text = value.as_str().unwrap_or_default();
    text.len() == 20 && text.ends_with('Z') && chrono::DateTime::parse_from_rfc3339(text).is_ok()
}

async fn session_ids_of(app: &TestApp, admin: &Session, guid: &str) -> Vec<i64> {
    let (_, rows) =
        body(admin_get(app, admin, &format!("/user-sessions/{guid}?pageSize=100")).await).await;
    rows.as_array()
        .unwrap()
        .iter()
        .map(|r| r["ID"].as_i64().unwrap())
        .collect()
}

on_both_stores!(
    list_counts_each_users_active_sessions,
    counts_move_as_sessions_start_end_and_expire,
    list_pages_carry_total_and_link_headers,
    list_sorts_by_username_or_session_count,
    counts_waiting_for_the_sweep_are_corrected_in_every_sort_and_page,
    bad_paging_and_sort_values_are_invalid_requests,
    user_sessions_shows_one_users_sessions_in_the_original_format,
    user_sessions_refuses_bad_and_unknown_guids,
    revoke_ends_a_session_everywhere,
    revoke_refuses_bad_bodies,
    revoke_user_ends_all_of_a_users_sessions,
    every_route_needs_an_admin_and_the_second_factor,
    a_two_factor_lockout_is_answered_in_the_admin_format,
);

async fn list_counts_each_users_active_sessions(store: Store) {
    let app = spawn_app(store).await;
    app.create_user("alice", false);
    app.create_user("bob", false);
    app.sessions_for("alice", 3).await;
    let bob = app.sessions_for("bob", 2).await;
    app.post_as("/api/v1/logout", &bob[1], &json!({})).await;
    app.create_user("carol", false);
    let (admin, _) = app.admin_past_2fa().await;

    let response = admin_get(&app, &admin, "/list").await;

    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["x-total-count"],
        "3",
        "carol has no session"
    );
    let (_, list) = body(response).await;
    assert_eq!(
        counts(&list),
        vec![
            ("admin".into(), 2, true),
            ("alice".into(), 3, false),
            ("bob".into(), 1, false)
        ]
    );
    let first = list[0].as_object().unwrap();
    assert_eq!(
        first.keys().collect::<Vec<_>>(),
        ["UserGuid", "UserName", "SessionCount", "IsOperator"]
    );
    assert_eq!(list[0]["UserGuid"], admin.user_id.as_str());
}

async fn counts_move_as_sessions_start_end_and_expire(store: Store) {
    let app = spawn_app(store).await;
    app.create_user("alice", false);
    let (admin, _) = app.admin_past_2fa().await;
    let alice_count = |list: &Value| {
        counts(list)
            .into_iter()
            .find(|(n, _, _)| n == "alice")
            .map(|(_, c, _)| c)
    };

    let (_, before) = body(admin_get(&app, &admin, "/list").await).await;
    assert_eq!(alice_count(&before), None);

    let alice = app.sessions_for("alice", 3).await;
    let (_, started) = body(admin_get(&app, &admin, "/list").await).await;
    assert_eq!(alice_count(&started), Some(3));

    app.post_as("/api/v1/logout", &alice[0], &json!({})).await;
    let (_, ended) = body(admin_get(&app, &admin, "/list").await).await;
    assert_eq!(alice_count(&ended), Some(2));

    // One of alice's sessions passes its expiry (the sweep has not run).
    let (_, page) = body(app.get_as("/api/v1/sessions/list?count=1", &alice[1]).await).await;
    let expiring = page["sessions"][0]["sessionId"]
        .as_str()
        .unwrap()
        .to_owned();
    app.query_texts(&format!(
        "UPDATE sessions SET expires_at = '2000-01-01 00:00:00' WHERE session_id = '{expiring}' RETURNING session_id AS value"
    ));
    let (_, expired) = body(admin_get(&app, &admin, "/list").await).await;
    assert_eq!(alice_count(&expired), Some(1));
}

async fn list_pages_carry_total_and_link_headers(store: Store) {
    let app = spawn_app(store).await;
    for user in ["u1", "u2", "u3", "u4", "u5"] {
        app.create_user(user, false);
        app.login(user, USER_PASSWORD).await;
    }
    let (admin, _) = app.admin_past_2fa().await;
    let link = |n: i64| format!("<{BASE}/list?page={n}&pageSize=2>");

    let cases = [
        (
            1,
            vec!["admin", "u1"],
            vec![(1, "first"), (2, "next"), (3, "last")],
        ),
        (
            2,
            vec!["u2", "u3"],
            vec![(1, "first"), (1, "prev"), (3, "next"), (3, "last")],
        ),
        (
            3,
            vec!["u4", "u5"],
            vec![(1, "first"), (2, "prev"), (3, "last")],
        ),
        (4, vec![], vec![(1, "first"), (3, "prev"), (3, "last")]),
    ];
    for (page, names, links) in cases {
        let response = admin_get(&app, &admin, &format!("/list?page={page}&pageSize=2")).await;
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["x-total-count"], "6", "page {page}");
        let expected_link = links
            .iter()
            .map(|(n, rel)| format!("{}; rel=\"{rel}\"", link(*n)))
            .collect::<Vec<_>>()
            .join(", ");
        assert_eq!(
            response.headers()["link"].to_str().unwrap(),
            expected_link,
            "page {page}"
        );
        let (_, list) = body(response).await;
        let got: Vec<String> = counts(&list).into_iter().map(|(n, _, _)| n).collect();
        assert_eq!(got, names, "page {page}");
    }
    let response = admin_get(&app, &admin, "/list?pageSize=2&sort=SessionCount:desc").await;
    assert!(
        response.headers()["link"]
            .to_str()
            .unwrap()
            .contains("&sort=SessionCount%3Adesc>"),
        "the sort is kept in the links"
    );
}

async fn list_sorts_by_username_or_session_count(store: Store) {
    let app = spawn_app(store).await;
    for (user, sessions) in [("ann", 1), ("bea", 4), ("cid", 3)] {
        app.create_user(user, false);
        app.sessions_for(user, sessions).await;
    }
    let (admin, _) = app.admin_past_2fa().await;
    let names = |list: &Value| {
        counts(list)
            .into_iter()
            .map(|(n, c, _)| format!("{n}:{c}"))
            .collect::<Vec<_>>()
    };

    let cases = [
        ("UserName", vec!["admin:2", "ann:1", "bea:4", "cid:3"]),
        ("UserName:desc", vec!["cid:3", "bea:4", "ann:1", "admin:2"]),
        (
            "SessionCount:desc",
            vec!["bea:4", "cid:3", "admin:2", "ann:1"],
        ),
        (
            "SessionCount:asc",
            vec!["ann:1", "admin:2", "cid:3", "bea:4"],
        ),
    ];
    for (sort, expected) in cases {
        let (status, list) =
            body(admin_get(&app, &admin, &format!("/list?sort={sort}")).await).await;
        assert_eq!(status, 200, "{sort}");
        assert_eq!(names(&list), expected, "{sort}");
    }
}

/// Sessions past their expiry that the sweep has not ended are not
/// counted, whatever the stored per-user counts say, and the pages of a
/// count sort follow the corrected counts.
async fn counts_waiting_for_the_sweep_are_corrected_in_every_sort_and_page(store: Store) {
    let app = spawn_app(store).await;
    for (user, sessions) in [("ann", 3), ("bea", 2), ("cid", 1)] {
        app.create_user(user, false);
        app.sessions_for(user, sessions).await;
    }
    let (admin, _) = app.admin_past_2fa().await;
    let expire = |user: &str, how_many: i64| {
        app.query_texts(&format!(
            "UPDATE sessions SET expires_at = '2000-01-01 00:00:00' WHERE id IN \
             (SELECT s.id FROM sessions s JOIN users u ON u.id = s.user_id \
              WHERE u.username = '{user}' ORDER BY s.id LIMIT {how_many}) \
             RETURNING session_id AS value"
        ))
    };
    assert_eq!(expire("ann", 2).len(), 2);
    assert_eq!(expire("cid", 1).len(), 1);
    let names = |list: &Value| {
        counts(list)
            .into_iter()
            .map(|(n, c, _)| format!("{n}:{c}"))
            .collect::<Vec<_>>()
    };
    let cases = [
        ("UserName", vec!["admin:2", "ann:1", "bea:2"]),
        ("SessionCount:desc", vec!["bea:2", "admin:2", "ann:1"]),
        ("SessionCount:asc", vec!["ann:1", "admin:2", "bea:2"]),
    ];
    for (sort, expected) in cases {
        let response = admin_get(&app, &admin, &format!("/list?sort={sort}")).await;
        assert_eq!(response.headers()["x-total-count"], "3", "{sort}");
        let (status, list) = body(response).await;
        assert_eq!(status, 200, "{sort}");
        assert_eq!(names(&list), expected, "{sort}");
        for (page, name) in expected.iter().enumerate() {
            let path = format!("/list?sort={sort}&page={}&pageSize=1", page + 1);
            let (_, one) = body(admin_get(&app, &admin, &path).await).await;
            assert_eq!(
                names(&one),
                vec![name.to_string()],
                "{sort} page {}",
                page + 1
            );
        }
    }

    // The counted list agrees with probing every user's sessions, on every
    // sort and page.
    use sessiond::domain::listing::Direction;
    use sessiond::store::sessions::by_user::{self, UserSort};
    let mut conn = app.pool.get().unwrap();
    let now = sessiond::domain::clock::now();
    for sort in [UserSort::UserName, UserSort::SessionCount] {
        for order in [Direction::Asc, Direction::Desc] {
            for (offset, limit) in [(0, 10), (0, 1), (1, 1), (2, 1), (1, 2)] {
                let counted =
                    by_user::users_with_active_sessions(&mut conn, sort, order, offset, limit, now)
                        .unwrap();
                let probed =
                    by_user::by_probing(&mut conn, sort, order, offset, limit, now).unwrap();
                assert_eq!(counted, probed, "{sort:?} {order:?} {offset} {limit}");
            }
        }
    }

    // Logging out and the sweep keep the stored counts true.
    app.post_as("/api/v1/sessions/logout.others", &admin, &json!({}))
        .await;
    let mut settings = sessiond::config::Settings::defaults();
    settings.retention_seconds = 86_400;
    let (ended, _) = sessiond::app::sweep(
        &mut conn,
        &settings,
        &sessiond::telemetry::metrics::Metrics::unexported(),
    )
    .unwrap();
    assert_eq!(ended, 3);
    let stored = app.query_texts(
        "SELECT username || ':' || CAST(unended_sessions AS TEXT) AS value FROM users \
         WHERE unended_sessions <> 0 ORDER BY username",
    );
    assert_eq!(stored, vec!["admin:1", "ann:1", "bea:2"]);
}

async fn bad_paging_and_sort_values_are_invalid_requests(store: Store) {
    let app = spawn_app(store).await;
    let (admin, _) = app.admin_past_2fa().await;

    for (query, says) in [
        ("page=0", "'page' must be a positive integer"),
        ("page=-2", "'page' must be a positive integer"),
        ("page=abc", "'page' must be a positive integer"),
        ("pageSize=0", "'pageSize' must be a positive integer"),
        ("pageSize=1.5", "'pageSize' must be a positive integer"),
        ("sort=Age", "'sort' must be UserName or SessionCount"),
        ("sort=UserName:sideways", "must be asc or desc"),
        ("limit=5", "Unknown parameter 'limit'"),
    ] {
        let (status, error) = body(admin_get(&app, &admin, &format!("/list?{query}")).await).await;
        assert_eq!(status, 400, "{query}");
        assert_eq!(error["Success"], false, "{query}");
        assert_eq!(error["Error"], "err_InvalidRequest", "{query}");
        assert!(
            error["Message"].as_str().unwrap().contains(says),
            "{query}: {error}"
        );
    }
    let response = admin_get(&app, &admin, "/list?pageSize=1000").await;
    assert_eq!(response.status(), 200, "page sizes above 100 are clamped");
    assert!(response.headers()["link"]
        .to_str()
        .unwrap()
        .contains("pageSize=100"));
}

async fn user_sessions_shows_one_users_sessions_in_the_original_format(store: Store) {
    let app = spawn_app(store).await;
    app.create_user("alice", false);
    // Chrome on Windows, then Safari on an iPhone, then an unknown agent.
    let chrome = app.login_from("alice", crate::helpers::AGENTS[0]).await;
    app.login_from("alice", crate::helpers::AGENTS[3]).await;
    app.login_from("alice", "").await;
    let (admin, _) = app.admin_past_2fa().await;

    let response = admin_get(&app, &admin, &format!("/user-sessions/{}", chrome.user_id)).await;

    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-total-count"], "3");
    let (_, rows) = body(response).await;
    let rows = rows.as_array().unwrap();
    let keys: Vec<&str> = rows[0]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "ID",
            "UserID",
            "UserGuid",
            "LastUpdated",
            "ExpirationDate",
            "UserName",
            "IsOperator",
            "Smartphone",
            "OperatingSystem",
            "Application"
        ]
    );
    let described: Vec<(String, String, String)> = rows
        .iter()
        .map(|r| {
            (
                r["Smartphone"].as_str().unwrap().to_owned(),
                r["OperatingSystem"].as_str().unwrap().to_owned(),
                r["Application"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        described,
        vec![
            ("-".into(), "Other- v. ".into(), "Other- v. ".into()),
            (
                "iPhone".into(),
                "iPhone- v. 16.5".into(),
                "Safari- v. 16.5".into()
            ),
            (
                "-".into(),
                "Windows- v. 10".into(),
                "Chrome- v. 113.0.0.0".into()
            ),
        ],
        "newest first"
    );
    for row in rows {
        assert!(row["ID"].is_i64());
        assert!(row["UserID"].is_i64());
        assert_eq!(row["UserGuid"], chrome.user_id.as_str());
        assert_eq!(row["UserName"], "alice");
        assert_eq!(row["IsOperator"], false);
        assert!(
            is_iso_seconds(&row["LastUpdated"]),
            "{}",
            row["LastUpdated"]
        );
        assert!(
            is_iso_seconds(&row["ExpirationDate"]),
            "{}",
            row["ExpirationDate"]
        );
        assert!(row["ExpirationDate"].as_str() > row["LastUpdated"].as_str());
    }
    let response = admin_get(
        &app,
        &admin,
        &format!(
            "/user-sessions/{}?page=2&pageSize=2",
            chrome.user_id.to_uppercase()
        ),
    )
    .await;
    assert_eq!(response.headers()["x-total-count"], "3");
    // The links name the user by the canonical (lower-case) guid.
    let base = format!(
        "/api/admin/v1/authenticated-sessions/user-sessions/{}",
        chrome.user_id
    );
    assert_eq!(
        response.headers()["link"].to_str().unwrap(),
        format!(
            "<{base}?page=1&pageSize=2>; rel=\"first\", <{base}?page=1&pageSize=2>; rel=\"prev\", \
             <{base}?page=2&pageSize=2>; rel=\"last\""
        )
    );
    let (_, second) = body(response).await;
    assert_eq!(second.as_array().unwrap().len(), 1);
}

async fn user_sessions_refuses_bad_and_unknown_guids(store: Store) {
    let app = spawn_app(store).await;
    let (admin, _) = app.admin_past_2fa().await;

    let (status, error) = body(admin_get(&app, &admin, "/user-sessions/not-a-guid").await).await;
    assert_eq!(status, 400);
    assert_eq!(error["Error"], "err_InvalidRequest");
    assert!(error["Message"].as_str().unwrap().contains("not a UUID"));
    let (status, error) = body(
        admin_get(
            &app,
            &admin,
            "/user-sessions/83bde819-ec08-4cee-b635-884145630d0b",
        )
        .await,
    )
    .await;
    assert_eq!(
        (status, error),
        (
            404,
            json!({"Success": false, "Error": "err_UserNotFound", "Message": "No user was found for the provided UserGuid"})
        )
    );
    // Upper-case guids name the same user.
    let upper = admin.user_id.to_uppercase();
    assert_eq!(
        admin_get(&app, &admin, &format!("/user-sessions/{upper}"))
            .await
            .status(),
        200
    );
}

async fn revoke_ends_a_session_everywhere(store: Store) {
    let app = spawn_app(store).await;
    app.create_user("bob", false);
    let bob = app.sessions_for("bob", 2).await;
    let (admin, _) = app.admin_past_2fa().await;
    let ids = session_ids_of(&app, &admin, &bob[0].user_id).await;
    assert_eq!(ids.len(), 2);

    let (status, revoked) = body(
        app.post_as(
            &format!("{BASE}/revoke"),
            &admin,
            &json!({"Session": ids[0]}),
        )
        .await,
    )
    .await;

    assert_eq!((status, revoked), (200, json!({"Success": true})));
    // Exactly one of bob's tokens is refused, on every surface.
    let mut refused = Vec::new();
    for session in &bob {
        let me = app.get_as("/api/v1/me", session).await.status().as_u16();
        let (_, reply) = body(
            app.post_json(
                "/api",
                &json!({"action": "listSessions", "authToken": session.token}),
            )
            .await,
        )
        .await;
        let code = reply["errorCode"].as_i64().unwrap();
        assert!(
            (me == 401 && code == 12031) || (me == 200 && code == 0),
            "the surfaces disagree: /api/v1/me {me}, POST /api {code}"
        );
        refused.push(me == 401);
    }
    assert_eq!(refused.iter().filter(|r| **r).count(), 1, "{refused:?}");
    let remaining = session_ids_of(&app, &admin, &bob[0].user_id).await;
    assert_eq!(remaining, vec![ids[1]]);
    let (status, again) = body(
        app.post_as(
            &format!("{BASE}/revoke"),
            &admin,
            &json!({"Session": ids[0]}),
        )
        .await,
    )
    .await;
    assert_eq!(
        (status, again),
        (404, parsed(NO_ACTIVE_SESSION)),
        "already ended"
    );
    let (status, unknown) = body(
        app.post_as(
            &format!("{BASE}/revoke"),
            &admin,
            &json!({"Session": 999_999}),
        )
        .await,
    )
    .await;
    assert_eq!((status, unknown), (404, parsed(NO_ACTIVE_SESSION)));
}

async fn revoke_refuses_bad_bodies(store: Store) {
    let app = spawn_app(store).await;
    let (admin, _) = app.admin_past_2fa().await;
    let url = app.url(&format!("{BASE}/revoke"));

    // No body, so no Content-Type: refused before anything is read.
    let (status, error) = body(
        app.client
            .post(&url)
            .headers(admin.headers())
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 415, "{error}");
    assert_eq!(error["Error"], "err_UnsupportedMediaType");

    let requests = [
        (
            "not JSON",
            app.client
                .post(&url)
                .headers(admin.headers())
                .header("content-type", "application/json")
                .body("{Session: 1"),
        ),
        (
            "no field",
            app.client
                .post(&url)
                .headers(admin.headers())
                .json(&json!({})),
        ),
        (
            "a string",
            app.client
                .post(&url)
                .headers(admin.headers())
                .json(&json!({"Session": "12"})),
        ),
        (
            "a fraction",
            app.client
                .post(&url)
                .headers(admin.headers())
                .json(&json!({"Session": 1.5})),
        ),
        (
            "an array",
            app.client
                .post(&url)
                .headers(admin.headers())
                .json(&json!([1])),
        ),
        (
            "null",
            app.client
                .post(&url)
                .headers(admin.headers())
                .json(&json!({"Session": null})),
        ),
    ];
    for (case, request) in requests {
        let (status, error) = body(request.send().await.unwrap()).await;
        assert_eq!(status, 400, "{case}");
        assert_eq!(error["Success"], false, "{case}");
        assert_eq!(error["Error"], "err_InvalidRequest", "{case}");
        assert!(
            error["Message"].as_str().unwrap().contains("Session"),
            "{case}: {error}"
        );
    }
}

async fn revoke_user_ends_all_of_a_users_sessions(store: Store) {
    let app = spawn_app(store).await;
    app.create_user("bob", false);
    app.create_user("carol", false);
    let bob = app.sessions_for("bob", 3).await;
    let carol = app.login("carol", USER_PASSWORD).await;
    let (admin, _) = app.admin_past_2fa().await;

    let (status, response) = body(
        app.post_as(
            &format!("{BASE}/revoke-user"),
            &admin,
            &json!({"UserGuid": bob[0].user_id}),
        )
        .await,
    )
    .await;

    assert_eq!(
        (status, response),
        (200, json!({"Success": true, "Count": 3}))
    );
    for session in &bob {
        assert_eq!(app.get_as("/api/v1/me", session).await.status(), 401);
    }
    assert_eq!(app.get_as("/api/v1/me", &carol).await.status(), 200);
    let (status, again) = body(
        app.post_as(
            &format!("{BASE}/revoke-user"),
            &admin,
            &json!({"UserGuid": bob[0].user_id}),
        )
        .await,
    )
    .await;
    assert_eq!((status, again), (200, json!({"Success": true, "Count": 0})));
    let (status, error) = body(
        app.post_as(
            &format!("{BASE}/revoke-user"),
            &admin,
            &json!({"UserGuid": "83bde819-ec08-4cee-b635-884145630d0b"}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 404);
    assert_eq!(error["Error"], "err_UserNotFound");
    let (status, error) = body(
        app.post_as(
            &format!("{BASE}/revoke-user"),
            &admin,
            &json!({"UserGuid": 7}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(error["Error"], "err_InvalidRequest");
}

async fn a_two_factor_lockout_is_answered_in_the_admin_format(store: Store) {
    let app = spawn_app(store).await;
    let admin = app.login_admin().await;
    let list = format!("{BASE}/list");
    // Before enrolling, the answer says how to.
    let (status, error) = body(app.get_with_code(&list, &admin, None).await).await;
    assert_eq!(status, 400);
    assert_eq!(error["Error"], "err_TwoFactorNotSetUp", "{error}");
    assert!(
        error["Message"]
            .as_str()
            .unwrap()
            .contains("POST /api/v1/users.2fa.enableTOTP"),
        "{error}"
    );
    app.enroll_totp(&admin).await;
    let mut last = (0, Value::Null, None);
    for _ in 0..8 {
        let response = app.get_with_code(&list, &admin, Some("000000")).await;
        let retry_after = response.headers().get("retry-after").cloned();
        let (status, error) = body(response).await;
        last = (status, error, retry_after);
        if last.1["Error"] != "err_TwoFactorInvalid" {
            break;
        }
    }
    let (status, error, retry_after) = last;
    assert_eq!(status, 400, "{error}");
    assert_eq!(error["Error"], "err_TwoFactorMaxAttempts", "{error}");
    let seconds: i64 = retry_after
        .expect("a lockout says when to retry")
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(seconds > 0);
    assert_eq!(
        error["Message"],
        format!("Too many wrong two-factor codes. Wait {seconds} seconds before trying again")
    );
}

async fn every_route_needs_an_admin_and_the_second_factor(store: Store) {
    let app = spawn_app(store).await;
    app.create_user("bob", false);
    let bob = app.login("bob", USER_PASSWORD).await;
    let admin = app.login_admin().await;
    let (secret, _) = app.enroll_totp(&admin).await;
    let routes: [(&str, Option<Value>); 4] = [
        ("/list", None),
        ("/user-sessions/83bde819-ec08-4cee-b635-884145630d0b", None),
        ("/revoke", Some(json!({"Session": 1}))),
        (
            "/revoke-user",
            Some(json!({"UserGuid": "83bde819-ec08-4cee-b635-884145630d0b"})),
        ),
    ];
    for (path, request) in &routes {
        let url = app.url(&format!("{BASE}{path}"));
        let call = |session: Option<&Session>, code: Option<&str>| {
            let mut builder = match request {
                None => app.client.get(&url),
                Some(request) => app.client.post(&url).json(request),
            };
            if let Some(session) = session {
                builder = builder.headers(session.headers());
            }
            if let Some(code) = code {
                builder = builder.header("x-2fa-code", code);
            }
            builder.send()
        };
        // Every refusal is in the admin API's own format.
        let (status, error) = body(call(None, None).await.unwrap()).await;
        assert_eq!(
            (status, error),
            (401, parsed(UNAUTHORIZED)),
            "{path} without credentials"
        );
        let mut ended = bob.clone();
        let last = if ended.token.ends_with('A') { "B" } else { "A" };
        ended.token.replace_range(ended.token.len() - 1.., last);
        let (status, error) = body(call(Some(&ended), None).await.unwrap()).await;
        assert_eq!(
            (status, error),
            (401, parsed(UNAUTHORIZED)),
            "{path} with a token that names no session"
        );
        let (status, error) = body(call(Some(&bob), None).await.unwrap()).await;
        assert_eq!(
            (status, error),
            (403, parsed(FORBIDDEN)),
            "{path} as a user"
        );
        let (status, error) = body(call(Some(&admin), None).await.unwrap()).await;
        assert_eq!(status, 400, "{path} without a code");
        assert_eq!(
            error,
            json!({"Success": false, "Error": "err_TwoFactorRequired",
                   "Message": "Send a TOTP code, or one of your backup codes, in the x-2fa-code header"}),
            "{path}"
        );
        let (status, error) = body(call(Some(&admin), Some("000000")).await.unwrap()).await;
        assert_eq!(status, 400, "{path} with a wrong code");
        assert_eq!(error["Error"], "err_TwoFactorInvalid", "{path}");
        assert_eq!(error["Success"], false, "{path}");
    }
    let code = crate::helpers::current_code(&secret, 1);
    let (status, _) = body(
        app.get_with_code(&format!("{BASE}/list"), &admin, Some(&code))
            .await,
    )
    .await;
    assert_eq!(status, 200, "the right code opens the surface");
}
