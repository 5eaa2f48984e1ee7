//! `alterSession`: what it may change and what it refuses.

use serde_json::{json, Value};

use super::{
    api, create_as, error, hash, is_iso_millis, keys, parse_time, token_for, DESCRIPTION_COLUMNS,
};
use crate::helpers::{spawn_app, Store};
use crate::on_both_stores;

on_both_stores!(
    alter_session_changes_description_timeout_and_defaults,
    alter_session_cannot_change_the_username_or_make_a_session_permanent,
);

async fn alter_session_changes_description_timeout_and_defaults(store: Store) {
    let app = spawn_app(store).await;
    app.create_user("alice", false);
    let token = token_for(&app, "alice").await;

    let reply = api(
        &app,
        &json!({"action": "alterSession", "authToken": token, "params": {
            "description": "renamed",
            "idleConnectionTimeoutSeconds": 120,
            "defaultDebug": "min",
            "defaultResponseOptions": {"dataFormat": "arrays"},
        }}),
    )
    .await;

    assert_eq!(error(&reply), (0, ""), "{reply}");
    let result = &reply["result"];
    assert_eq!(keys(result), DESCRIPTION_COLUMNS);
    assert_eq!(result["authToken"], token.as_str());
    assert_eq!(result["description"], "renamed");
    assert_eq!(result["idleConnectionTimeoutSeconds"], 120);
    assert_eq!(result["defaultApi"], "admin", "untouched defaults stay");
    assert_eq!(result["defaultDebug"], "min");
    assert_eq!(
        result["defaultResponseOptions"],
        json!({"dataFormat": "arrays"})
    );
    let idle = parse_time(&result["sessionExpirationTimestamp"])
        - parse_time(&result["sessionLastAccessedTimestamp"]);
    assert_eq!(
        idle.num_seconds(),
        120,
        "the expiry follows the new timeout"
    );
    let stored = app.query_texts(&format!(
        "SELECT description || '|' || CAST(idle_timeout_seconds AS TEXT) AS value FROM sessions WHERE token_hash = '{}'",
        hash(&token)
    ));
    assert_eq!(stored, ["renamed|120"]);
    // The new default data format now shapes lists.
    let listed = api(&app, &json!({"action": "listSessions", "authToken": token})).await;
    assert_eq!(
        listed["result"]["sessions"],
        json!([["alice", "renamed", token]])
    );
}

async fn alter_session_cannot_change_the_username_or_make_a_session_permanent(store: Store) {
    let app = spawn_app(store).await;
    app.create_user("alice", false);
    let token = token_for(&app, "alice").await;
    let alter =
        |params: Value| json!({"action": "alterSession", "authToken": token, "params": params});

    let rename = api(&app, &alter(json!({"username": "admin"}))).await;
    let permanent = api(&app, &alter(json!({"permanentSession": true}))).await;
    let password = api(&app, &alter(json!({"password": "x"}))).await;

    assert_eq!(
        error(&rename),
        (
            34005,
            "'username' cannot be changed: a session belongs to the account that created it."
        )
    );
    assert_eq!(
        error(&permanent),
        (34005, "'permanentSession' cannot be set to true by alterSession: only createSession makes a permanent session.")
    );
    assert_eq!(
        error(&password),
        (34005, "'password' is not a property of alterSession; its properties are description, idleConnectionTimeoutSeconds, permanentSession, defaultApi, defaultDebug, defaultResponseOptions.")
    );
    let stored = app.query_texts(&format!(
        "SELECT CASE WHEN permanent THEN 'permanent' ELSE 'ordinary' END AS value FROM sessions WHERE token_hash = '{}'",
        hash(&token)
    ));
    assert_eq!(stored, ["ordinary"]);

    // A permanent session may stop being permanent.
    let forever = create_as(&app, "alice", json!({"permanentSession": true})).await;
    let forever = forever["result"]["authToken"].as_str().unwrap();
    let ended = api(
        &app,
        &json!({"action": "alterSession", "authToken": forever, "params": {"permanentSession": false}}),
    )
    .await;
    assert_eq!(error(&ended), (0, ""));
    assert_eq!(ended["result"]["permanentSession"], false);
    assert!(is_iso_millis(
        &ended["result"]["sessionExpirationTimestamp"]
    ));
}
