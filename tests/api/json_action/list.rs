//! `listSessions`: who sees which sessions, token hints, and `usernameFilter`.

use serde_json::{json, Value};

use super::{admin_token, api, error, keys, token_for};
use crate::helpers::{spawn_app, Store, USER_PASSWORD};
use crate::on_both_stores;

on_both_stores!(
    list_sessions_shows_the_callers_sessions_with_only_its_own_token,
    admins_list_everyones_sessions_without_seeing_their_tokens,
    username_filter_narrows_the_list_and_checks_its_entries,
);

async fn list_sessions_shows_the_callers_sessions_with_only_its_own_token(store: Store) {
    let app = spawn_app(store).await;
    app.create_user("alice", false);
    app.create_user("bob", false);
    let mine = token_for(&app, "alice").await;
    let other_json = token_for(&app, "alice").await;
    let other_rc = app.login("alice", USER_PASSWORD).await.token;
    let bobs = token_for(&app, "bob").await;

    let reply = api(
        &app,
        &json!({"requestId": "2", "action": "listSessions", "authToken": mine}),
    )
    .await;

    assert_eq!(
        keys(&reply),
        [
            "result",
            "requestId",
            "errorCode",
            "errorMessage",
            "authToken"
        ]
    );
    assert_eq!(reply["authToken"], mine.as_str());
    let hint = |t: &str| format!("{}…", &t[..6]);
    // Newest first.
    assert_eq!(
        reply["result"],
        json!({"sessions": [
            {"username": "alice", "description": "", "authToken": hint(&other_rc)},
            {"username": "alice", "description": "", "authToken": hint(&other_json)},
            {"username": "alice", "description": "", "authToken": mine},
        ]})
    );
    let text = reply.to_string();
    for secret in [&other_json, &other_rc, &bobs] {
        assert!(
            !text.contains(secret.as_str()),
            "a full token leaked: {text}"
        );
    }
}

async fn admins_list_everyones_sessions_without_seeing_their_tokens(store: Store) {
    let app = spawn_app(store).await;
    app.create_user("alice", false);
    app.create_user("bob", false);
    let alice = token_for(&app, "alice").await;
    let bob = app.login("bob", USER_PASSWORD).await.token;
    let admin = admin_token(&app).await;

    let reply = api(&app, &json!({"action": "listSessions", "authToken": admin})).await;

    assert_eq!(error(&reply), (0, ""));
    let sessions = reply["result"]["sessions"].as_array().unwrap();
    let shown: Vec<(&str, &str)> = sessions
        .iter()
        .map(|s| {
            (
                s["username"].as_str().unwrap(),
                s["authToken"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        shown,
        [
            ("admin", admin.as_str()),
            ("bob", format!("{}…", &bob[..6]).as_str()),
            ("alice", format!("{}…", &alice[..6]).as_str()),
        ]
    );
    let text = reply.to_string();
    assert!(!text.contains(&alice) && !text.contains(&bob), "{text}");
}

async fn username_filter_narrows_the_list_and_checks_its_entries(store: Store) {
    let app = spawn_app(store).await;
    app.create_user("alice", false);
    app.create_user("bob", false);
    token_for(&app, "alice").await;
    token_for(&app, "bob").await;
    let admin = admin_token(&app).await;
    let alice = token_for(&app, "alice").await;
    let list = |token: &str, filter: Value| json!({"action": "listSessions", "authToken": token, "params": {"usernameFilter": filter}});
    let names = |reply: &Value| -> Vec<String> {
        reply["result"]["sessions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["username"].as_str().unwrap().to_owned())
            .collect()
    };

    let alices = api(&app, &list(&admin, json!(["ALICE"]))).await;
    let both = api(&app, &list(&admin, json!(["alice", "bob"]))).await;
    let empty = api(&app, &list(&admin, json!([]))).await;
    let not_own = api(&app, &list(&alice, json!(["bob"]))).await;

    assert_eq!(names(&alices), ["alice", "alice"]);
    assert_eq!(names(&both), ["alice", "bob", "alice"]);
    assert_eq!(names(&empty).len(), 4, "an empty filter is no filter");
    assert_eq!(
        names(&not_own),
        Vec::<String>::new(),
        "a user sees only its own"
    );
    let each = "a string of 1 to 64 bytes";
    let whole = "'usernameFilter' must be an array of at most 100 strings of 1 to 64 bytes each";
    let cases = [
        (
            json!([""]),
            format!("'usernameFilter[0]' must be {each}; got a string of 0 bytes."),
        ),
        (
            json!(["ok", "a".repeat(65)]),
            format!("'usernameFilter[1]' must be {each}; got a string of 65 bytes."),
        ),
        (
            json!([5]),
            format!("'usernameFilter[0]' must be {each}; got a number."),
        ),
        (json!("alice"), format!("{whole}; got a string of 5 bytes.")),
        (
            json!(vec!["a"; 101]),
            format!("{whole}; got an array of 101 entries."),
        ),
    ];
    for (filter, message) in cases {
        let reply = api(&app, &list(&admin, filter.clone())).await;
        assert_eq!(error(&reply), (34005, message.as_str()), "{filter}");
    }
}
