//! `info` (the full session document) and `info.admin` (the populated list
//! item), and who may read them.

use serde_json::json;

use super::{get, ids, is_iso_millis, parsed, FORBIDDEN, NOT_FOUND};
use crate::helpers::{spawn_app, Store, USER_PASSWORD};
use crate::on_both_stores;

on_both_stores!(
    info_returns_the_callers_own_session_in_full,
    info_never_shows_another_users_session,
    info_admin_reads_any_session_behind_2fa,
);

async fn info_returns_the_callers_own_session_in_full(store: Store) {
    let app = spawn_app(store).await;
    app.create_user("alice", false);
    let alice = app.sessions_for("alice", 2).await;
    let (_, page) = get(&app, "/api/v1/sessions/list", &alice[0]).await;
    let current = page["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["current"] == true)
        .unwrap();
    let session_id = current["sessionId"].as_str().unwrap();

    let (status, info) = get(
        &app,
        &format!("/api/v1/sessions/info?sessionId={session_id}"),
        &alice[0],
    )
    .await;

    assert_eq!(status, 200, "{info}");
    let keys: Vec<&str> = info
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "_id",
            "type",
            "sessionId",
            "instanceId",
            "loginToken",
            "ip",
            "host",
            "device",
            "userId",
            "roles",
            "mostImportantRole",
            "loginAt",
            "day",
            "month",
            "year",
            "searchTerm",
            "createdAt",
            "_updatedAt",
            "lastActivityAt",
            "newDevice",
            "success"
        ]
    );
    assert_eq!(info["type"], "session");
    assert_eq!(info["sessionId"], session_id);
    use base64::Engine;
    use sha2::Digest;
    let hashed = base64::engine::general_purpose::STANDARD
        .encode(sha2::Sha256::digest(alice[0].token.as_bytes()));
    assert_eq!(
        info["loginToken"], hashed,
        "the stored hash, never the token"
    );
    assert_eq!(info["roles"], json!(["user"]));
    assert_eq!(info["mostImportantRole"], "user");
    assert_eq!(
        info["searchTerm"],
        format!("ChromebrowserWindows{session_id}{}", alice[0].user_id)
    );
    let login_at = info["loginAt"].as_str().unwrap();
    assert!(is_iso_millis(&info["loginAt"]));
    assert_eq!(info["year"].as_i64().unwrap().to_string(), login_at[..4]);
    assert_eq!(
        format!("{:02}", info["month"].as_i64().unwrap()),
        login_at[5..7]
    );
    assert_eq!(
        format!("{:02}", info["day"].as_i64().unwrap()),
        login_at[8..10]
    );

    // An ended session of one's own is still shown, with closedAt.
    app.post_as("/api/v1/logout", &alice[1], &json!({})).await;
    let other = page["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["current"] == false)
        .unwrap();
    let (status, ended) = get(
        &app,
        &format!(
            "/api/v1/sessions/info?sessionId={}",
            other["sessionId"].as_str().unwrap()
        ),
        &alice[0],
    )
    .await;
    assert_eq!(status, 200);
    assert!(is_iso_millis(&ended["closedAt"]), "{ended}");
}

async fn info_never_shows_another_users_session(store: Store) {
    let app = spawn_app(store).await;
    app.create_user("alice", false);
    app.create_user("bob", false);
    let alice = app.login("alice", USER_PASSWORD).await;
    let bob = app.login("bob", USER_PASSWORD).await;
    let (_, bobs) = get(&app, "/api/v1/sessions/list", &bob).await;
    let bobs_id = ids(&bobs)[0].clone();

    for id in [bobs_id.as_str(), "QoYYFw2t9oKks2niG", "bad%00id", "x"] {
        let (status, error) = get(
            &app,
            &format!("/api/v1/sessions/info?sessionId={id}"),
            &alice,
        )
        .await;
        assert_eq!((status, error), (404, parsed(NOT_FOUND)), "{id}");
    }
    let (_, alices) = get(&app, "/api/v1/sessions/list", &alice).await;
    assert!(!ids(&alices).contains(&bobs_id));
}

async fn info_admin_reads_any_session_behind_2fa(store: Store) {
    let app = spawn_app(store).await;
    app.create_user("bob", false);
    app.create_user("carol", false);
    let carol = app.login("carol", USER_PASSWORD).await;
    let (_, carols) = get(&app, "/api/v1/sessions/list", &carol).await;
    let carols_id = ids(&carols)[0].clone();
    let bob = app.login("bob", USER_PASSWORD).await;
    let (_, bobs) = get(&app, "/api/v1/sessions/list", &bob).await;
    let bobs_id = ids(&bobs)[0].clone();
    let (admin, _) = app.admin_past_2fa().await;

    let (status, info) = get(
        &app,
        &format!("/api/v1/sessions/info.admin?sessionId={bobs_id}"),
        &admin,
    )
    .await;
    assert_eq!(status, 200, "{info}");
    // The populated list item: what `list.all` shows of it, and no more.
    let keys: Vec<&str> = info
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "sessionId",
            "userId",
            "device",
            "host",
            "ip",
            "loginAt",
            "newDevice",
            "_user",
            "_id",
            "success"
        ]
    );
    assert_eq!(info["sessionId"], bobs_id.as_str());
    assert_eq!(info["_id"], bobs_id.as_str());
    assert_eq!(info["userId"], bob.user_id.as_str());
    assert_eq!(
        info["_user"],
        json!({"username": "bob", "name": "bob name"})
    );
    assert_eq!(info["success"], true);
    assert!(is_iso_millis(&info["loginAt"]), "{info}");
    let (_, everyone) = get(&app, "/api/v1/sessions/list.all", &admin).await;
    let listed = everyone["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["sessionId"] == bobs_id.as_str())
        .unwrap();
    let mut without_success = info.clone();
    without_success.as_object_mut().unwrap().remove("success");
    assert_eq!(
        &without_success, listed,
        "info.admin shows the row list.all shows"
    );

    // An ended session is not found, as it is gone from list.all.
    let response = app.post_as("/api/v1/logout", &carol, &json!({})).await;
    assert_eq!(response.status(), 200);
    let (status, error) = get(
        &app,
        &format!("/api/v1/sessions/info.admin?sessionId={carols_id}"),
        &admin,
    )
    .await;
    assert_eq!((status, error), (404, parsed(NOT_FOUND)));
    let (status, error) = get(
        &app,
        "/api/v1/sessions/info.admin?sessionId=QoYYFw2t9oKks2niG",
        &admin,
    )
    .await;
    assert_eq!((status, error), (404, parsed(NOT_FOUND)));
    let (status, error) = get(
        &app,
        &format!("/api/v1/sessions/info.admin?sessionId={bobs_id}"),
        &bob,
    )
    .await;
    assert_eq!((status, error), (403, parsed(FORBIDDEN)));
}
