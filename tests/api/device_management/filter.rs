//! The `filter` parameter: case-insensitive regexes, refusals, and the
//! user fields `list.all` also searches.

use serde_json::Value;

use super::{get, ids};
use crate::helpers::{body, spawn_app, Session, Store, TestApp, USER_PASSWORD};
use crate::on_both_stores;

on_both_stores!(
    filters_are_case_insensitive_unanchored_regexes,
    bad_filters_are_refused_with_the_reason,
    list_all_filters_also_match_username_and_name,
);

async fn filtered(app: &TestApp, path: &str, session: &Session, filter: &str) -> (u16, Value) {
    body(
        app.client
            .get(app.url(path))
            .headers(session.headers())
            .query(&[("filter", filter)])
            .send()
            .await
            .unwrap(),
    )
    .await
}

async fn filters_are_case_insensitive_unanchored_regexes(store: Store) {
    let app = spawn_app(store).await;
    app.create_user("alice", false);
    // Chrome/Windows, Firefox/Windows, Chrome/Android, Safari/iPhone, Chrome/Mac, Firefox/Linux
    let alice = app.sessions_for("alice", 6).await;

    let cases = [
        ("windows", 2),
        ("WINDOWS", 2),
        ("android|iphone", 2),
        ("^chrome", 3),
        ("^windows", 0),
        ("^(firefox|safari)", 3),
        ("mobile", 2),
        ("browser", 4),
        ("fire.ox", 2),
        ("x{3}_", 0),
        ("", 6),
    ];
    for (filter, expected) in cases {
        let (status, page) = filtered(&app, "/api/v1/sessions/list", &alice[0], filter).await;
        assert_eq!(status, 200, "{filter}: {page}");
        assert_eq!(page["total"], expected, "{filter}");
        assert_eq!(ids(&page).len(), expected, "{filter}");
    }
    // The session id and user id are part of the search term too.
    let (_, page) = get(&app, "/api/v1/sessions/list?count=1", &alice[0]).await;
    let one = page["sessions"][0]["sessionId"]
        .as_str()
        .unwrap()
        .to_owned();
    let (_, by_id) = filtered(&app, "/api/v1/sessions/list", &alice[0], &one).await;
    assert_eq!(ids(&by_id), vec![one]);
}

async fn bad_filters_are_refused_with_the_reason(store: Store) {
    let app = spawn_app(store).await;
    app.create_user("alice", false);
    let alice = app.login("alice", USER_PASSWORD).await;

    let long = "a".repeat(257);
    let cases = [
        ("(unclosed", "unclosed group"),
        ("a{", "at byte"),
        (long.as_str(), "at most 256"),
        ("\\d+", "`\\d`"),
        ("\\bword", "`\\b`"),
        ("(?i)chrome", "`(?i)`"),
        ("[[:alpha:]]", "`[:alpha:]`"),
        ("a{300}", "`{300}`"),
        ("é", "`é`"),
    ];
    for (filter, reason) in cases {
        let (status, error) = filtered(&app, "/api/v1/sessions/list", &alice, filter).await;
        assert_eq!(status, 400, "{filter}");
        assert_eq!(error["success"], false);
        assert_eq!(error["errorType"], "error-invalid-filter", "{filter}");
        let message = error["error"].as_str().unwrap();
        assert!(message.starts_with("Invalid filter: "), "{message}");
        assert!(message.ends_with("[error-invalid-filter]"), "{message}");
        assert!(message.contains(reason), "{filter}: {message}");
    }
    let (status, _) = filtered(&app, "/api/v1/sessions/list", &alice, &"a".repeat(256)).await;
    assert_eq!(status, 200, "256 bytes is allowed");
}

async fn list_all_filters_also_match_username_and_name(store: Store) {
    let app = spawn_app(store).await;
    app.create_user("funke.olasupo", false);
    app.create_user("rodriq", false);
    app.sessions_for("funke.olasupo", 2).await;
    app.sessions_for("rodriq", 1).await;
    let (admin, _) = app.admin_past_2fa().await;

    let (_, by_username) = filtered(&app, "/api/v1/sessions/list.all", &admin, "funke").await;
    assert_eq!(by_username["total"], 2);
    let (_, by_name) = filtered(&app, "/api/v1/sessions/list.all", &admin, "^rodriq name$").await;
    assert_eq!(by_name["total"], 1, "the name is matched on its own");
    let (_, either) = filtered(&app, "/api/v1/sessions/list.all", &admin, "FUNKE|rodriq").await;
    assert_eq!(either["total"], 3);
    // On a user's own list, usernames are not searched.
    let funke = app.login("funke.olasupo", USER_PASSWORD).await;
    let (_, own) = filtered(&app, "/api/v1/sessions/list", &funke, "funke").await;
    assert_eq!(own["total"], 0);
}
