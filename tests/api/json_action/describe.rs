//! `describeSessions`: the caller's sessions, or the given tokens.

use serde_json::{json, Value};

use super::{admin_token, api, error, keys, token_for, DESCRIPTION_COLUMNS, NO_SESSION};
use crate::helpers::{spawn_app, Store};
use crate::on_both_stores;

on_both_stores!(
    describe_sessions_without_tokens_describes_the_callers_sessions,
    describe_sessions_by_token_needs_admin_for_other_accounts,
);

async fn describe_sessions_without_tokens_describes_the_callers_sessions(store: Store) {
    let app = spawn_app(store).await;
    app.create_user("alice", false);
    let older = token_for(&app, "alice").await;
    let mine = token_for(&app, "alice").await;
    admin_token(&app).await;

    let reply = api(
        &app,
        &json!({"action": "describeSessions", "authToken": mine}),
    )
    .await;

    assert_eq!(error(&reply), (0, ""));
    let sessions = reply["result"]["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 2);
    for session in sessions {
        assert_eq!(keys(session), DESCRIPTION_COLUMNS);
        assert_eq!(session["username"], "alice");
    }
    assert_eq!(sessions[0]["authToken"], mine.as_str());
    assert_eq!(sessions[1]["authToken"], format!("{}…", &older[..6]));
    assert!(!reply.to_string().contains(&older));
}

async fn describe_sessions_by_token_needs_admin_for_other_accounts(store: Store) {
    let app = spawn_app(store).await;
    app.create_user("alice", false);
    app.create_user("bob", false);
    let alice = token_for(&app, "alice").await;
    let alice_other = token_for(&app, "alice").await;
    let bob = token_for(&app, "bob").await;
    let admin = admin_token(&app).await;
    let describe = |caller: &str, tokens: Value| json!({"action": "describeSessions", "authToken": caller, "params": {"authTokens": tokens}});

    let own = api(&app, &describe(&alice, json!([alice_other]))).await;
    let others = api(&app, &describe(&alice, json!([alice_other, bob]))).await;
    let as_admin = api(
        &app,
        &describe(&admin, json!([bob, "not-a-session", alice])),
    )
    .await;

    assert_eq!(error(&own), (0, ""));
    assert_eq!(
        own["result"]["sessions"][0]["authToken"],
        alice_other.as_str()
    );
    assert_eq!(
        others,
        json!({"result": {}, "requestId": null, "errorCode": 34020,
               "errorMessage": "Not permitted: only an administrator may describe another account's sessions.",
               "authToken": alice})
    );
    assert_eq!(error(&as_admin), (0, ""));
    let described: Vec<&str> = as_admin["result"]["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["username"].as_str().unwrap())
        .collect();
    assert_eq!(described, ["bob", "alice"]);
    assert_eq!(
        as_admin["debugInfo"],
        json!({"warnings": [{"code": 12031, "message": NO_SESSION, "property": "authTokens[1]"}]})
    );
}
