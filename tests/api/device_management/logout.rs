//! `logout.me`, `logout` and `logout.others`: ending sessions, and that
//! an ended session's token is refused at once.

use serde_json::json;

use super::{get, ids, parsed, FORBIDDEN, NOT_FOUND, NOT_LOGGED_IN};
use crate::helpers::{body, spawn_app, Store, USER_PASSWORD};
use crate::on_both_stores;

on_both_stores!(
    logout_me_ends_the_session_and_is_idempotent,
    logout_me_cannot_end_another_users_session,
    admin_logout_ends_any_session_behind_2fa,
    logout_others_keeps_only_the_current_session,
    no_request_succeeds_after_logout_returns,
);

async fn logout_me_ends_the_session_and_is_idempotent(store: Store) {
    let app = spawn_app(store).await;
    app.create_user("alice", false);
    let alice = app.sessions_for("alice", 2).await;
    let (_, page) = get(&app, "/api/v1/sessions/list", &alice[0]).await;
    let other = page["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["current"] == false)
        .unwrap();
    let other_id = other["sessionId"].as_str().unwrap().to_owned();

    let (status, ended) = body(
        app.post_as(
            "/api/v1/sessions/logout.me",
            &alice[0],
            &json!({"sessionId": other_id}),
        )
        .await,
    )
    .await;
    assert_eq!(
        (status, ended),
        (200, json!({"sessionId": other_id, "success": true}))
    );
    let (status, me) = get(&app, "/api/v1/me", &alice[1]).await;
    assert_eq!(
        (status, me),
        (401, parsed(NOT_LOGGED_IN)),
        "the ended session's token is refused"
    );
    let (status, again) = body(
        app.post_as(
            "/api/v1/sessions/logout.me",
            &alice[0],
            &json!({"sessionId": other_id}),
        )
        .await,
    )
    .await;
    assert_eq!(
        (status, again),
        (200, json!({"sessionId": other_id, "success": true})),
        "idempotent"
    );
    let (_, page) = get(&app, "/api/v1/sessions/list", &alice[0]).await;
    assert_eq!(page["total"], 1);

    let cases = [
        (json!({"sessionId": "QoYYFw2t9oKks2niG"}), 404),
        (json!({}), 400),
        (json!({"sessionId": ""}), 400),
        (json!({"sessionId": 12}), 400),
        (json!({"sessionId": "x", "more": 1}), 400),
        (json!(["x"]), 400),
    ];
    for (request, expected) in cases {
        let (status, error) = body(
            app.post_as("/api/v1/sessions/logout.me", &alice[0], &request)
                .await,
        )
        .await;
        assert_eq!(status, expected, "{request}: {error}");
        if request == json!({"sessionId": ""}) {
            assert_eq!(
                error["error"],
                "'sessionId' must NOT have fewer than 1 characters [invalid-params]"
            );
        }
    }
    let (status, error) = body(
        app.client
            .post(app.url("/api/v1/sessions/logout.me"))
            .headers(alice[0].headers())
            .header("content-type", "application/json")
            .body("{oops")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(error["errorType"], "error-invalid-json");
}

async fn logout_me_cannot_end_another_users_session(store: Store) {
    let app = spawn_app(store).await;
    app.create_user("alice", false);
    app.create_user("bob", false);
    let alice = app.login("alice", USER_PASSWORD).await;
    let bob = app.login("bob", USER_PASSWORD).await;
    let (_, bobs) = get(&app, "/api/v1/sessions/list", &bob).await;
    let bobs_id = ids(&bobs)[0].clone();

    let (status, error) = body(
        app.post_as(
            "/api/v1/sessions/logout.me",
            &alice,
            &json!({"sessionId": bobs_id}),
        )
        .await,
    )
    .await;

    assert_eq!((status, error), (404, parsed(NOT_FOUND)));
    assert_eq!(
        app.get_as("/api/v1/me", &bob).await.status(),
        200,
        "bob is still logged in"
    );
}

async fn admin_logout_ends_any_session_behind_2fa(store: Store) {
    let app = spawn_app(store).await;
    app.create_user("bob", false);
    let bob = app.login("bob", USER_PASSWORD).await;
    let (_, bobs) = get(&app, "/api/v1/sessions/list", &bob).await;
    let bobs_id = ids(&bobs)[0].clone();
    let (admin, _) = app.admin_past_2fa().await;

    let (status, error) = body(
        app.post_as(
            "/api/v1/sessions/logout",
            &bob,
            &json!({"sessionId": bobs_id}),
        )
        .await,
    )
    .await;
    assert_eq!(
        (status, error),
        (403, parsed(FORBIDDEN)),
        "a user cannot use the admin route"
    );

    let (status, ended) = body(
        app.post_as(
            "/api/v1/sessions/logout",
            &admin,
            &json!({"sessionId": bobs_id}),
        )
        .await,
    )
    .await;
    assert_eq!(
        (status, ended),
        (200, json!({"sessionId": bobs_id, "success": true}))
    );
    assert_eq!(app.get_as("/api/v1/me", &bob).await.status(), 401);
    let (status, _) = body(
        app.post_as(
            "/api/v1/sessions/logout",
            &admin,
            &json!({"sessionId": bobs_id}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 200, "idempotent");
    let (status, error) = body(
        app.post_as(
            "/api/v1/sessions/logout",
            &admin,
            &json!({"sessionId": "QoYYFw2t9oKks2niG"}),
        )
        .await,
    )
    .await;
    assert_eq!((status, error), (404, parsed(NOT_FOUND)));
    let by = app.query_texts(
        "SELECT COALESCE(logout_by, '') AS value FROM sessions WHERE logout_by LIKE 'admin:%'",
    );
    assert_eq!(by, vec![format!("admin:{}", admin.user_id)]);
}

async fn logout_others_keeps_only_the_current_session(store: Store) {
    let app = spawn_app(store).await;
    app.create_user("alice", false);
    app.create_user("bob", false);
    let alice = app.sessions_for("alice", 4).await;
    let bob = app.login("bob", USER_PASSWORD).await;

    let (status, response) = body(
        app.post_as("/api/v1/sessions/logout.others", &alice[1], &json!({}))
            .await,
    )
    .await;

    assert_eq!(
        (status, response),
        (200, json!({"count": 3, "success": true}))
    );
    assert_eq!(app.get_as("/api/v1/me", &alice[1]).await.status(), 200);
    for other in [&alice[0], &alice[2], &alice[3]] {
        assert_eq!(app.get_as("/api/v1/me", other).await.status(), 401);
    }
    assert_eq!(
        app.get_as("/api/v1/me", &bob).await.status(),
        200,
        "other users untouched"
    );
}

async fn no_request_succeeds_after_logout_returns(store: Store) {
    let app = spawn_app(store).await;
    app.create_user("alice", false);
    let alice = app.sessions_for("alice", 2).await;
    let (_, page) = get(&app, "/api/v1/sessions/list", &alice[0]).await;
    let target = page["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["current"] == false)
        .unwrap();
    let target_id = target["sessionId"].as_str().unwrap().to_owned();
    let victim = alice[1].clone();

    // Requests with the victim's token run while the session is ended.
    let hammer = {
        let client = app.client.clone();
        let url = app.url("/api/v1/sessions/list");
        let victim = victim.clone();
        tokio::spawn(async move {
            let mut statuses = Vec::new();
            for _ in 0..40 {
                let response = client
                    .get(&url)
                    .headers(victim.headers())
                    .send()
                    .await
                    .unwrap();
                statuses.push(response.status().as_u16());
            }
            statuses
        })
    };
    let (status, _) = body(
        app.post_as(
            "/api/v1/sessions/logout.me",
            &alice[0],
            &json!({"sessionId": target_id}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 200);
    // From here on, nothing the token asks for succeeds, on any route.
    for path in [
        "/api/v1/me",
        "/api/v1/sessions/list",
        &format!("/api/v1/sessions/info?sessionId={target_id}"),
    ] {
        let (status, error) = get(&app, path, &victim).await;
        assert_eq!((status, error), (401, parsed(NOT_LOGGED_IN)), "{path}");
    }
    let statuses = hammer.await.unwrap();
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 401),
        "{statuses:?}"
    );
    let first_refusal = statuses
        .iter()
        .position(|s| *s == 401)
        .unwrap_or(statuses.len());
    assert!(
        statuses[first_refusal..].iter().all(|s| *s == 401),
        "once refused, always refused: {statuses:?}"
    );
}
