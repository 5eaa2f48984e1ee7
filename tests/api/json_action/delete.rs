//! `deleteSession`: ending the session, and warnings for unknown tokens.

use serde_json::json;

use super::{api, error, hash, token_for, NO_SESSION};
use crate::helpers::{spawn_app, Store};
use crate::on_both_stores;

on_both_stores!(delete_session_ends_the_session_and_unknown_tokens_only_warn,);

async fn delete_session_ends_the_session_and_unknown_tokens_only_warn(store: Store) {
    let app = spawn_app(store).await;
    app.create_user("alice", false);
    let token = token_for(&app, "alice").await;
    let delete = json!({"requestId": 3, "action": "deleteSession", "authToken": token});

    let first = api(&app, &delete).await;
    let after = api(&app, &json!({"action": "listSessions", "authToken": token})).await;
    let again = api(&app, &delete).await;
    let garbage = api(
        &app,
        &json!({"action": "deleteSession", "authToken": "not a token"}),
    )
    .await;

    assert_eq!(
        first,
        json!({"result": {}, "requestId": 3, "errorCode": 0, "errorMessage": "", "authToken": token})
    );
    assert_eq!(error(&after), (12031, NO_SESSION));
    let warned = json!({"result": {}, "requestId": 3, "errorCode": 0, "errorMessage": "", "authToken": token,
        "debugInfo": {"warnings": [{"code": 12031, "message": NO_SESSION, "property": "authToken"}]}});
    assert_eq!(again, warned);
    assert_eq!(error(&garbage), (0, ""));
    assert_eq!(garbage["debugInfo"]["warnings"][0]["code"], 12031);
    let ended_by = app.query_texts(&format!(
        "SELECT logout_by AS value FROM sessions WHERE token_hash = '{}' AND logout_at IS NOT NULL",
        hash(&token)
    ));
    assert_eq!(ended_by, ["user"]);
}
