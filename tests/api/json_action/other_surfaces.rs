//! One kind of session: sessions of `POST /api` and of the Rocket.Chat
//! surface are seen and ended from either.

use serde_json::json;

use super::{api, error, token_for, NO_SESSION};
use crate::helpers::{body, spawn_app, Store, USER_PASSWORD};
use crate::on_both_stores;

on_both_stores!(
    sessions_are_shared_with_the_rocket_chat_surface,
    a_session_ended_by_delete_session_is_refused_by_rocket_chat,
    a_session_ended_by_logout_me_gets_12031_on_the_next_request,
);

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
