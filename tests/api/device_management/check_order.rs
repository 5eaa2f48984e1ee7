//! The order of the checks: 401, then 403, then parameters, then the
//! second factor; unknown and missing parameters.

use serde_json::json;

use super::{get, parsed, FORBIDDEN, NOT_LOGGED_IN};
use crate::helpers::{body, spawn_app, Session, Store, USER_PASSWORD};
use crate::on_both_stores;

on_both_stores!(
    unknown_and_missing_parameters_get_invalid_params,
    admin_routes_check_permission_before_parameters_before_2fa,
    authentication_is_checked_before_parameters,
);

async fn unknown_and_missing_parameters_get_invalid_params(store: Store) {
    let app = spawn_app(store).await;
    app.create_user("alice", false);
    let alice = app.login("alice", USER_PASSWORD).await;

    let (status, unknown) = get(&app, "/api/v1/sessions/list?foo=1", &alice).await;
    assert_eq!(status, 400);
    assert_eq!(
        unknown,
        json!({
            "success": false,
            "error": "must NOT have additional properties [invalid-params]",
            "errorType": "invalid-params",
            "details": {"additionalProperty": "foo"}
        })
    );
    let (status, _) = get(&app, "/api/v1/sessions/info?sessionId=x&extra=1", &alice).await;
    assert_eq!(status, 400);
    let (status, missing) = get(&app, "/api/v1/sessions/info", &alice).await;
    assert_eq!(status, 400);
    assert_eq!(
        missing,
        json!({
            "success": false,
            "error": "must have required property 'sessionId' [invalid-params]",
            "errorType": "invalid-params"
        })
    );
    let (status, repeated) = get(&app, "/api/v1/sessions/list?count=1&count=2", &alice).await;
    assert_eq!(status, 400);
    assert_eq!(repeated["errorType"], "invalid-params");
}

async fn admin_routes_check_permission_before_parameters_before_2fa(store: Store) {
    let app = spawn_app(store).await;
    app.create_user("bob", false);
    let bob = app.login("bob", USER_PASSWORD).await;
    // An admin session opened before enrollment has not passed the second factor.
    let admin = app.login_admin().await;
    app.enroll_totp(&admin).await;

    // Unauthenticated: 401 even with bad parameters.
    let (status, _) = body(
        app.client
            .get(app.url("/api/v1/sessions/list.all?sort=bad"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 401);
    // No permission: 403, whatever the parameters and code.
    let (status, error) = body(
        app.get_with_code("/api/v1/sessions/list.all?sort=bad", &bob, None)
            .await,
    )
    .await;
    assert_eq!((status, error), (403, parsed(FORBIDDEN)));
    let (status, error) = body(
        app.post_with_code("/api/v1/sessions/logout", &bob, &json!({}), None)
            .await,
    )
    .await;
    assert_eq!((status, error), (403, parsed(FORBIDDEN)));
    // Bad parameters: 400 for the parameter before any word about 2FA.
    let (status, error) = body(
        app.get_with_code("/api/v1/sessions/list.all?sort=bad", &admin, None)
            .await,
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(error["errorType"], "error-invalid-sort");
    let (status, error) = body(
        app.get_with_code("/api/v1/sessions/info.admin", &admin, None)
            .await,
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(error["errorType"], "invalid-params");
    // Good parameters, no code: now 2FA speaks.
    let (status, error) = body(
        app.get_with_code("/api/v1/sessions/list.all", &admin, None)
            .await,
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(error["errorType"], "totp-required");
}

/// `list` and `info` authenticate inside the same store call that serves
/// them; a bad token still gets the 401 before any parameter is judged.
async fn authentication_is_checked_before_parameters(store: Store) {
    let app = spawn_app(store).await;
    app.create_user("alice", false);
    let alice = app.login("alice", USER_PASSWORD).await;
    let forged = Session {
        user_id: alice.user_id.clone(),
        token: "not-the-token-of-any-session".into(),
    };
    for path in [
        "/api/v1/sessions/list?sort=notjson",
        "/api/v1/sessions/list?count=-1",
        "/api/v1/sessions/list?bogus=1",
        "/api/v1/sessions/list?cursor=forged",
        "/api/v1/sessions/info",
        "/api/v1/sessions/info?sessionId=QoYYFw2t9oKks2niG&extra=1",
    ] {
        let (status, error) = get(&app, path, &forged).await;
        assert_eq!((status, error), (401, parsed(NOT_LOGGED_IN)), "{path}");
        let (status, error) = get(&app, path, &alice).await;
        assert_eq!(status, 400, "{path} with a valid token: {error}");
    }
    let (status, _) = get(
        &app,
        "/api/v1/sessions/info?sessionId=QoYYFw2t9oKks2niG",
        &forged,
    )
    .await;
    assert_eq!(
        status, 401,
        "an unknown session to a forged token is still a 401"
    );
}
