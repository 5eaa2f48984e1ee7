//! The second factor in front of the admin routes (`x-2fa-code`).

use serde_json::{json, Value};

use crate::helpers::{body, current_code, spawn_app, Session, Store, TestApp};
use crate::on_both_stores;

on_both_stores!(
    the_second_factor_guard_enforces_every_rule,
    a_user_without_totp_is_told_how_to_enroll,
);

async fn the_second_factor_guard_enforces_every_rule(store: Store) {
    let app = spawn_app(store).await;
    let admin = app.login_admin().await;
    let (secret, backup_codes) = app.enroll_totp(&admin).await;
    let first = app.login_raw("admin", &app.admin_password).await;
    assert_eq!(first.status(), 400, "login asks for the code");
    let session = login_with(&app, &backup_codes[0]).await;

    let totp_required = json!({
        "success": false,
        "error": "TOTP Required [totp-required]",
        "errorType": "totp-required",
        "details": {"method": "totp", "codeGenerated": false, "availableMethods": ["totp"]}
    });
    let totp_invalid = json!({
        "success": false,
        "error": "TOTP Invalid [totp-invalid]",
        "errorType": "totp-invalid",
        "details": {"method": "totp", "codeGenerated": false}
    });
    // The backup-code login authorized this session for the window; end it.
    assert_eq!(
        app.get_with_code("/api/v1/sessions/list.all", &session, None)
            .await
            .status(),
        200
    );
    app.end_two_factor_window(&session);

    let (status, error) = body(
        app.get_with_code("/api/v1/sessions/list.all", &session, None)
            .await,
    )
    .await;
    assert_eq!(
        (status, error),
        (400, totp_required.clone()),
        "the window has passed"
    );
    let (status, error) = body(
        app.get_with_code("/api/v1/sessions/list.all", &session, Some("000000"))
            .await,
    )
    .await;
    assert_eq!((status, error), (400, totp_invalid.clone()), "wrong code");
    let (status, error) = body(
        app.get_with_code("/api/v1/sessions/list.all", &session, Some("nonsense"))
            .await,
    )
    .await;
    assert_eq!(
        (status, error),
        (400, totp_invalid.clone()),
        "malformed code"
    );
    let (status, error) = body(
        app.get_with_code(
            "/api/v1/sessions/list.all",
            &session,
            Some(&backup_codes[0]),
        )
        .await,
    )
    .await;
    assert_eq!(
        (status, error),
        (400, totp_invalid.clone()),
        "a used backup code"
    );

    let code = current_code(&secret, 1);
    let (status, page) = body(
        app.get_with_code("/api/v1/sessions/list.all", &session, Some(&code))
            .await,
    )
    .await;
    assert_eq!(status, 200, "{page}");
    // Remembered for the window: no code needed.
    assert_eq!(
        app.get_with_code(
            "/api/v1/sessions/info.admin?sessionId=QoYYFw2t9oKks2niG",
            &session,
            None
        )
        .await
        .status(),
        404
    );

    // The same code on another session is a replay.
    let other = login_with(&app, &backup_codes[1]).await;
    app.end_two_factor_window(&other);
    let (status, error) = body(
        app.get_with_code("/api/v1/sessions/list.all", &other, Some(&code))
            .await,
    )
    .await;
    assert_eq!((status, error), (400, totp_invalid), "replayed code");
    let (status, _) = body(
        app.get_with_code("/api/v1/sessions/list.all", &other, Some(&backup_codes[2]))
            .await,
    )
    .await;
    assert_eq!(status, 200, "an unused backup code works on the guard");
}

async fn login_with(app: &TestApp, code: &str) -> Session {
    let response = app
        .post_json(
            "/api/v1/login",
            &json!({"user": "admin", "password": app.admin_password, "code": code}),
        )
        .await;
    assert_eq!(response.status(), 200);
    let login: Value = response.json().await.unwrap();
    Session {
        user_id: login["data"]["userId"].as_str().unwrap().to_owned(),
        token: login["data"]["authToken"].as_str().unwrap().to_owned(),
    }
}

async fn a_user_without_totp_is_told_how_to_enroll(store: Store) {
    let app = spawn_app(store).await;
    let admin = app.login_admin().await;

    let (status, error) = body(
        app.get_with_code("/api/v1/sessions/list.all", &admin, Some("123456"))
            .await,
    )
    .await;

    assert_eq!(status, 400);
    assert_eq!(error["error"], "TOTP Required [totp-required]");
    assert_eq!(error["errorType"], "totp-required");
    assert_eq!(error["details"]["availableMethods"], json!([]));
    assert!(error["message"]
        .as_str()
        .unwrap()
        .contains("users.2fa.enableTOTP"));
}
